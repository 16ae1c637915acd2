-- TUS: a PATCH holds its upload with a lease (lock_token until locked_until, renewed while the
-- body streams) so two PATCHes at one offset never run at once, in one process or several, and
-- no database connection is held while a client sends. A lease left by a killed process lapses.
-- Part blobs get a key of their own per PATCH (recorded in part_keys), so a PATCH that lost its
-- lease can only ever delete its own bytes.
alter table ownbase.storage_tus_uploads add column if not exists lock_token text;
alter table ownbase.storage_tus_uploads add column if not exists locked_until timestamptz;
alter table ownbase.storage_tus_uploads add column if not exists part_keys text[];
update ownbase.storage_tus_uploads
   set part_keys = array(select '.tus/' || id || '/' || o from unnest(part_offsets) o order by o)
 where part_keys is null;
alter table ownbase.storage_tus_uploads alter column part_keys set default '{}';
alter table ownbase.storage_tus_uploads alter column part_keys set not null;
