"""``ownbase migrate``: move a Supabase project (schema, data, users, files, URLs) onto ownbase.

Every step reads the source through its ordinary connection string / Storage API, writes the
target configured by the usual settings, records per-item progress in ``ownbase.migrate_progress``
(so a killed run resumes) and can write a JSON report. See docs/migration/.
"""
