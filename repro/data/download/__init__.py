"""`repro data download` / `repro data verify`: every dataset of `repro data check` and every pretrained weight file
of the four papers, fetched from pinned sources, verified and laid out in exactly the layout the loaders read.

entries.py (what an entry is, where it goes), catalogue.py (the entries, with the source of each checksum),
checksums.py, fetch.py (HTTP with resume and mirrors), hosts.py (Kaggle and Google Drive, optional packages),
unpack.py (safe extraction and placement), marker.py (what was fetched from where), run.py (the commands),
ensure.py (what an artefact command's --download calls)."""
