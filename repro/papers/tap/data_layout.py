"""The record that completes a TAP prepared folder (decoy MNIST, PNEU, KNEE) in the prepared-data store
(`repro.runs.prepared`): `meta.json`, written last (`repro.papers.tap.data_staging`). Import-light: plans read it."""

META = "meta.json"
