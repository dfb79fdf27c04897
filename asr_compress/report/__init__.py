"""Report of a sweep: tables (markdown), plots (PNG), `write_report`, the Hydra callback and the CLI.

Import the submodules directly (`asr_compress.report.write`); this package initialises nothing
heavy (no matplotlib, no torch) so that the Hydra callback is cheap to instantiate.
"""
