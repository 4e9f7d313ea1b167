"""Loaders into the canonical store: SDS v2.1 CSV, OneRoster 1.1 CSV, an SDS lake snapshot."""

from ._limits import DEFAULT_LIMITS, ReadLimits
from ._load import PARALLEL_FROM_BYTES
from ._problems import REPORT_COLUMNS
from .oneroster_csv import ONEROSTER_FILES, ONEROSTER_SOURCE_SYSTEM, load_oneroster_csv
from .progress import FileProgress, ProgressCallback
from .report import LoadReport
from .sds_csv import SDS_FILES, SOURCE_SYSTEM, load_sds_csv
from .sds_lake import SNAPSHOT_MANIFEST, load_sds_lake

__all__ = [
    "DEFAULT_LIMITS",
    "ONEROSTER_FILES",
    "ONEROSTER_SOURCE_SYSTEM",
    "PARALLEL_FROM_BYTES",
    "REPORT_COLUMNS",
    "SDS_FILES",
    "SNAPSHOT_MANIFEST",
    "SOURCE_SYSTEM",
    "FileProgress",
    "LoadReport",
    "ProgressCallback",
    "ReadLimits",
    "load_oneroster_csv",
    "load_sds_csv",
    "load_sds_lake",
]
