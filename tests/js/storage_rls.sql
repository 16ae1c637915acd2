-- Supabase-style storage policies for storage_rls.test.mjs: users write under their own uid folder
-- in buckets named jsrls-*, and anyone reads jsrls-pub-* buckets.
do $$
begin
  if not exists (select 1 from pg_policies where schemaname = 'storage' and policyname = 'jsrls own insert') then
    create policy "jsrls own insert" on storage.objects for insert to authenticated
      with check (bucket_id like 'jsrls-%' and (storage.foldername(name))[1] = auth.uid()::text);
    create policy "jsrls own select" on storage.objects for select to authenticated
      using (bucket_id like 'jsrls-%' and (storage.foldername(name))[1] = auth.uid()::text);
    create policy "jsrls own delete" on storage.objects for delete to authenticated
      using (bucket_id like 'jsrls-%' and (storage.foldername(name))[1] = auth.uid()::text);
    create policy "jsrls public read" on storage.objects for select to anon, authenticated
      using (bucket_id like 'jsrls-pub-%');
  end if;
end
$$;
