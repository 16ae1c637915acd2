-- Auth (issue 10): the per-address mail budget is keyed by a keyed hash of the address, and also
-- counts attempts for addresses without an account. Rows from before carry clear addresses; they
-- only matter for an hour, so drop them instead of keeping names in clear.
delete from ownbase.auth_email_sends where address like '%@%';
