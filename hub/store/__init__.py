"""The database: tables, engine set-up and migrations."""
