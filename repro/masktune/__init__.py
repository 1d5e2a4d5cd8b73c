"""MaskTune's two-stage pipeline (masktune spec §0): ERM, the masking pass, the one-epoch finetune."""
