"""`cleaning eval`: score a finished run against line-labelled pages (how clean is what it kept)."""
