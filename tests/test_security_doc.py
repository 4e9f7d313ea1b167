"""docs/security.md names, for every limit, the test that proves it and the setting that
changes it: both must exist, or the page promises what nothing checks."""

from __future__ import annotations

import re
from pathlib import Path

from industrydata.config import Settings

ROOT = Path(__file__).resolve().parents[1]
SECURITY = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
TEST_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)")
SETTING = re.compile(r"`(INDUSTRYDATA_[A-Z_]+)`")
# Settings that are read from the environment but are not fields of Settings.
NOT_SETTINGS_FIELDS = {"INDUSTRYDATA_DEBUG", "INDUSTRYDATA_ALLOWED_HTTP_ENDPOINTS"}


def test_every_test_the_page_names_exists() -> None:
    references = TEST_REFERENCE.findall(SECURITY)
    assert len(references) > 100
    missing = [
        f"{path}::{name}"
        for path, name in references
        if not (ROOT / path).is_file()
        or not re.search(rf"^\s*(async )?def {name}\b", (ROOT / path).read_text(), re.M)
    ]
    assert missing == []


def test_every_setting_the_page_names_exists() -> None:
    fields = {f"INDUSTRYDATA_{name.upper()}" for name in Settings.model_fields}
    named = set(SETTING.findall(SECURITY))
    assert named
    assert named - fields - NOT_SETTINGS_FIELDS == set()
