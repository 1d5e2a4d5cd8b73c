"""Run store (hash-keyed run folders, atomic writes, claims) and launchers."""
