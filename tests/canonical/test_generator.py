"""The synthetic district is a valid, internally consistent SDS v2.1 drop: it loads without a
single problem, a seed always gives the same files, and its size grows linearly with the
number of students (about 6 classes per student, 20 students per class, one teacher per 20
students, one guardian per student)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import Engine

from industrydata.canonical.generator import generate_sds_csv
from industrydata.canonical.ingest import SDS_FILES, load_sds_csv
from industrydata.canonical.statistics import count_rows
from tests.canonical.ingest_support import rows_of

TENANT = "9a1c0e55-0000-4000-8000-000000000001"


def _contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _column(folder: Path, file: str, column: str) -> list[str]:
    with (folder / file).open(encoding="utf-8", newline="") as handle:
        return [row[column] for row in csv.DictReader(handle)]


def test_generate_sds_csv_fifty_students_loads_without_problems(
    engine: Engine, tmp_path: Path
) -> None:
    written = generate_sds_csv(tmp_path, students=50, seed=7)

    report = load_sds_csv(engine, tmp_path, tenant_id=TENANT)

    assert report.problems == []
    assert set(written) == {spec.name for spec in SDS_FILES}
    assert report.records == written
    rows = count_rows(engine, TENANT)
    assert rows["Person"] == written["users.csv"]
    assert rows["Enrollment"] == written["enrollments.csv"]
    assert rows["PersonRelationship"] == rows["PersonDemographic"] == 50
    assert rows["SectionSession"] == 2 * rows["Section"]  # classes run over both semesters
    for table in (
        "Organization",
        "Session",
        "Course",
        "CourseSubject",
        "CourseGradeLevel",
        "PersonOrganizationRole",
        "PersonDemographicRace",
        "PersonPhoneNumber",
    ):
        assert rows[table] > 0, table


def test_generate_sds_csv_same_seed_same_files(tmp_path: Path) -> None:
    generate_sds_csv(tmp_path / "a", students=120, seed=3)
    generate_sds_csv(tmp_path / "b", students=120, seed=3)
    generate_sds_csv(tmp_path / "c", students=120, seed=4)

    assert _contents(tmp_path / "a") == _contents(tmp_path / "b")
    assert _contents(tmp_path / "a") != _contents(tmp_path / "c")


def test_generate_sds_csv_size_grows_linearly(tmp_path: Path) -> None:
    students = 4000

    written = generate_sds_csv(tmp_path, students=students)

    users = _column(tmp_path, "users.csv", "sourcedId")
    teachers = sum(user.startswith("tch-") for user in users)
    guardians = sum(user.startswith("gdn-") for user in users)
    enrolled = _column(tmp_path, "enrollments.csv", "role").count("student")
    assert guardians == written["relationships.csv"] == written["demographics.csv"] == students
    assert enrolled == 6 * students
    assert 18 <= enrolled / written["classes.csv"] <= 20
    assert 18 <= students / teachers <= 22
    assert written["orgs.csv"] == 1 + students // 1000


def test_generate_sds_csv_users_have_unique_ids_and_usernames(tmp_path: Path) -> None:
    generate_sds_csv(tmp_path, students=300, seed=1)

    for column in ("sourcedId", "username"):
        values = _column(tmp_path, "users.csv", column)
        assert len(values) == len(set(values)), column


def test_generate_sds_csv_without_students_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_sds_csv(tmp_path, students=0)


def test_generate_sds_csv_fills_user_numbers_and_class_codes(
    engine: Engine, tmp_path: Path
) -> None:
    generate_sds_csv(tmp_path, students=40, seed=2)

    load_sds_csv(engine, tmp_path, tenant_id=TENANT)

    numbers = _column(tmp_path, "users.csv", "userNumber")
    users = _column(tmp_path, "users.csv", "sourcedId")
    assert {user for user, number in zip(users, numbers, strict=True) if number} == {
        user for user in users if not user.startswith("gdn-")
    }
    assert len(set(filter(None, numbers))) == len(list(filter(None, numbers)))
    identifiers = rows_of(engine, "PersonIdentifier", TENANT)
    assert sum(row["RefIdentifierTypeId"] == "200" for row in identifiers) == len(
        list(filter(None, numbers))
    )
    assert all(row["Code"] for row in rows_of(engine, "Section", TENANT))
