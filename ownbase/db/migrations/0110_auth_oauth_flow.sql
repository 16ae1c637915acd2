-- Auth (issue 13): the flow_state columns GoTrue uses for OAuth sign-in and identity linking, plus
-- ownbase's browser binding (the flow was started by a browser that got the state cookie).

alter table auth.flow_state add column if not exists invite_token text;
alter table auth.flow_state add column if not exists referrer text;
alter table auth.flow_state add column if not exists oauth_client_state_id uuid;
alter table auth.flow_state add column if not exists linking_target_id uuid;
alter table auth.flow_state add column if not exists email_optional boolean not null default false;
alter table auth.flow_state add column if not exists browser_bound boolean not null default false;
create index if not exists flow_state_created_at_idx on auth.flow_state (created_at desc);
