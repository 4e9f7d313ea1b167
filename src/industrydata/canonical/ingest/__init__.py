"""Loaders of SIS interchange files into the canonical store (validate, normalise, upsert)."""

from .report import LoadReport
from .sds_csv import SDS_FILES, SOURCE_SYSTEM, ProgressCallback, load_sds_csv

__all__ = ["SDS_FILES", "SOURCE_SYSTEM", "LoadReport", "ProgressCallback", "load_sds_csv"]
