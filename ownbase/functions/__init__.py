"""/functions/v1: Supabase Edge Functions' invoke surface, routed to Lambda, a URL or a local command."""
