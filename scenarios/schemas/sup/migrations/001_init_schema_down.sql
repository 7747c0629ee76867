-- COMPLETION (not in the seed document): rollback of 001 ("Every migration has corresponding *_down.sql").
DROP FUNCTION IF EXISTS get_unread_count(UUID, UUID);
DROP FUNCTION IF EXISTS cleanup_expired_sessions();
DROP FUNCTION IF EXISTS cleanup_expired_stories();
DROP TABLE IF EXISTS call_participants, calls, story_privacy_lists, story_views, stories,
    user_sticker_packs, stickers, sticker_packs, media_files, message_reactions, message_reads,
    message_recipients, messages, group_sender_keys, sessions_crypto, one_time_prekeys,
    signed_prekeys, identity_keys, chat_members, chat_roles, chats, blocked_users, contacts,
    sessions, user_devices, users;
DROP TYPE IF EXISTS call_status, call_type, story_media_type, message_type, chat_type, user_status;
DELETE FROM schema_migrations WHERE version = 1;
