"""Loaders of SIS interchange files into the canonical store (validate, normalise, upsert)."""

from ._load import PARALLEL_FROM_BYTES
from .oneroster_csv import ONEROSTER_FILES, ONEROSTER_SOURCE_SYSTEM, load_oneroster_csv
from .progress import FileProgress, ProgressCallback
from .report import LoadReport
from .sds_csv import SDS_FILES, SOURCE_SYSTEM, load_sds_csv

__all__ = [
    "ONEROSTER_FILES",
    "ONEROSTER_SOURCE_SYSTEM",
    "PARALLEL_FROM_BYTES",
    "SDS_FILES",
    "SOURCE_SYSTEM",
    "FileProgress",
    "LoadReport",
    "ProgressCallback",
    "load_oneroster_csv",
    "load_sds_csv",
]
