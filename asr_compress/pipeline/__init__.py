"""Load ESPnet models and take them apart into components."""
from asr_compress.pipeline.load import ModelFiles, find_model_files, load_pipeline
from asr_compress.pipeline.pipeline import Pipeline

__all__ = ["ModelFiles", "Pipeline", "find_model_files", "load_pipeline"]
