-- The extension installs (pg_regress loaded it) and refuses nothing.
SELECT extname, extversion FROM pg_extension WHERE extname = 'queue';
