"""The query API process: usage, accounts and summaries behind service keys, and the ops view."""
