"""The console scripts: cli.py (the Hydra entry points), nmt-translate and nmt-evaluate."""
