"""Reports: tables (pandas -> CSV, paper vs reproduced) and figures (matplotlib -> PNG), with provenance."""
