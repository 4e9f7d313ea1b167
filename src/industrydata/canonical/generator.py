"""A synthetic school district as an SDS v2.1 CSV drop: demo data and benchmark input.

The district's shape follows from the number of students alone, so its size grows linearly:
high schools of about 1,000 students in grades 9 to 12, six courses per grade, classes of
about 20, one teacher per six classes (about one per 20 students), one guardian per student.
Names and demographics come from ``random.Random(seed)`` and small built-in lists, so a seed
always gives the same files. Every record is valid: the drop loads without problems.
"""

from __future__ import annotations

import csv
import math
import random
from contextlib import ExitStack
from pathlib import Path
from typing import TextIO

from .ingest.sds_csv import SDS_FILES

__all__ = ["generate_sds_csv"]

STUDENTS_PER_SCHOOL = 1000
STUDENTS_PER_CLASS = 20
CLASSES_PER_TEACHER = 6
GRADES = ("09", "10", "11", "12")
SCHOOL_YEAR = "2026"
SESSIONS = (
    ("sy-2026", "2025-2026 School Year", "schoolYear", "2025-08-25", "2026-06-12"),
    ("s1-2026", "Fall Semester 2025", "semester", "2025-08-25", "2026-01-16"),
    ("s2-2026", "Spring Semester 2026", "semester", "2026-01-20", "2026-06-12"),
)
SCHOOL_YEAR_SESSION = SESSIONS[0][0]
CLASS_SESSIONS = f"{SESSIONS[1][0]},{SESSIONS[2][0]}"
SUBJECTS = (
    ("MATH", "Mathematics", "02"),
    ("ELA", "English Language Arts", "01"),
    ("SCI", "Science", "03"),
    ("HIST", "History", "04"),
    ("ART", "Art", "05"),
    ("PE", "Physical Education", "08"),
)
DOMAIN = "northwind.example"

_GIVEN_NAMES = (
    "Aiden",
    "Amara",
    "Ana",
    "Ben",
    "Chloe",
    "Daniel",
    "Elena",
    "Emil",
    "Farah",
    "Felix",
    "Grace",
    "Hana",
    "Hugo",
    "Isla",
    "Ivan",
    "Jada",
    "Jonas",
    "Kai",
    "Lea",
    "Liam",
    "Maya",
    "Mateo",
    "Nadia",
    "Noah",
    "Olivia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Sara",
    "Theo",
    "Uma",
    "Victor",
    "Wen",
    "Yara",
    "Yusuf",
    "Zoe",
)
_FAMILY_NAMES = (
    "Adams",
    "Baker",
    "Chen",
    "Diaz",
    "Evans",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Khan",
    "Larsen",
    "Martin",
    "Nguyen",
    "Okafor",
    "Patel",
    "Quist",
    "Rossi",
    "Silva",
    "Tanaka",
    "Umar",
    "Varga",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zhang",
)
_TOWNS = (
    "Ashford",
    "Brookside",
    "Cedar Falls",
    "Dunmore",
    "Elmwood",
    "Fairview",
    "Glenhaven",
    "Harbor City",
    "Ironwood",
    "Juniper",
    "Kingsport",
    "Lakeside",
)
_STATES = ("WA", "OR", "CA", "ID", "NY", "TX")
_RACES = (
    "americanIndianOrAlaskaNative",
    "asian",
    "blackOrAfricanAmerican",
    "nativeHawaiianOrOtherPacificIslander",
    "white",
)
_FLAGS = ("freeLunch", "reducedLunch", "giftedOrTalented", "504", "ELL", "IEP")
_GUARDIAN_ROLES = ("parent", "guardian")


def generate_sds_csv(out_dir: Path, *, students: int, seed: int = 0) -> dict[str, int]:
    """Write a complete SDS v2.1 CSV drop for ``students`` students into ``out_dir``.

    Returns the data rows written per file (all ten files of the format).
    """
    if students < 1:
        raise ValueError("students must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        writers: dict[str, _CountingWriter] = {}
        for spec in SDS_FILES:
            handle = stack.enter_context(
                (out_dir / spec.name).open("w", encoding="utf-8", newline="")
            )
            writers[spec.name] = _CountingWriter(handle, spec.headers)
        _District(writers, students, random.Random(seed)).write()
        return {name: writer.rows for name, writer in writers.items()}


class _CountingWriter:
    """A csv writer that writes the header first, places values by header and counts rows."""

    def __init__(self, handle: TextIO, header: tuple[str, ...]) -> None:
        self._writer = csv.writer(handle)
        self._writer.writerow(header)
        self._header = header
        self._known = frozenset(header)
        self.rows = 0

    def row(self, **values: str) -> None:
        if not values.keys() <= self._known:
            raise ValueError(f"not headers of this file: {sorted(values.keys() - self._known)}")
        self._writer.writerow([values.get(name, "") for name in self._header])
        self.rows += 1


class _District:
    """The district's records, written file by file in one pass over its students."""

    def __init__(self, writers: dict[str, _CountingWriter], students: int, rng: random.Random):
        self.out = writers
        self.rng = rng
        self.students = students
        self.schools = math.ceil(students / STUDENTS_PER_SCHOOL)
        self.staff = 0

    def write(self) -> None:
        for sourced_id, title, session_type, start, end in SESSIONS:
            self.out["academicSessions.csv"].row(
                sourcedId=sourced_id,
                title=title,
                type=session_type,
                schoolYear=SCHOOL_YEAR,
                startDate=start,
                endDate=end,
            )
        self.out["orgs.csv"].row(
            sourcedId="district", name="Northwind Unified School District", type="district"
        )
        self._staff("adm-0", "district", "administrator", [])
        groups = self._groups()
        for school in range(self.schools):
            town = _TOWNS[school % len(_TOWNS)]
            number = f" {school // len(_TOWNS) + 1}" if school >= len(_TOWNS) else ""
            self.out["orgs.csv"].row(
                sourcedId=f"sch-{school}",
                name=f"{town} High School{number}",
                type="school",
                parentSourcedId="district",
            )
            self._school(
                school,
                [(grade, groups[school, grade]) for grade in GRADES if (school, grade) in groups],
            )

    def _groups(self) -> dict[tuple[int, str], list[int]]:
        """Students by school and grade: round-robin over schools, then over grades."""
        groups: dict[tuple[int, str], list[int]] = {}
        for student in range(self.students):
            school = student % self.schools
            grade = GRADES[(student // self.schools) % len(GRADES)]
            groups.setdefault((school, grade), []).append(student)
        return groups

    def _school(self, school: int, groups: list[tuple[str, list[int]]]) -> None:
        org = f"sch-{school}"
        classes: list[str] = []
        for grade, members in groups:
            sections = math.ceil(len(members) / STUDENTS_PER_CLASS)
            for code, subject, subject_code in SUBJECTS:
                course = f"crs-{school}-{grade}-{code}"
                self.out["courses.csv"].row(
                    sourcedId=course,
                    orgSourcedId=org,
                    title=f"{subject} {grade}",
                    code=f"{code}-{grade}",
                    schoolYearSourcedId=SCHOOL_YEAR_SESSION,
                    subject=subject_code,
                    grade=grade,
                )
                for section in range(1, sections + 1):
                    class_id = f"cls-{school}-{grade}-{code}-{section}"
                    self.out["classes.csv"].row(
                        sourcedId=class_id,
                        orgSourcedId=org,
                        title=f"{subject} {grade} - Section {section}",
                        sessionSourcedIds=CLASS_SESSIONS,
                        courseSourcedId=course,
                        code=f"{code}-{grade}-{section:02d}",
                    )
                    classes.append(class_id)
            for position, student in enumerate(members):
                self._student(org, grade, student, position % sections + 1)
        for first in range(0, len(classes), CLASSES_PER_TEACHER):
            teacher = f"tch-{school}-{first // CLASSES_PER_TEACHER}"
            self._staff(teacher, org, "teacher", classes[first : first + CLASSES_PER_TEACHER])

    def _staff(self, user: str, org: str, role: str, classes: list[str]) -> None:
        given, family = self._name()
        username = f"{given}.{family}.{user}@{DOMAIN}".lower()
        self.out["users.csv"].row(
            sourcedId=user,
            username=username,
            givenName=given,
            familyName=family,
            activeDirectoryMatchId=username,
            email=username,
            userNumber=f"E{self.staff:06d}",
        )
        self.staff += 1
        self._role(user, org, role, grade="")
        for class_id in classes:
            self.out["enrollments.csv"].row(classSourcedId=class_id, userSourcedId=user, role=role)

    def _student(self, org: str, grade: str, student: int, section: int) -> None:
        rng = self.rng
        user, guardian = f"stu-{student}", f"gdn-{student}"
        given, family = self._name()
        username = f"{given}.{family}.{user}@{DOMAIN}".lower()
        self.out["users.csv"].row(
            sourcedId=user,
            username=username,
            givenName=given,
            familyName=family,
            activeDirectoryMatchId=username,
            email=username,
            userNumber=f"S{student:07d}",
        )
        self._role(user, org, "student", grade=grade)
        school = org.removeprefix("sch-")
        for code, _subject, _subject_code in SUBJECTS:
            self.out["enrollments.csv"].row(
                classSourcedId=f"cls-{school}-{grade}-{code}-{section}",
                userSourcedId=user,
                role="student",
            )
        self._demographics(user, grade)
        if rng.random() < 0.1:
            self.out["userFlags.csv"].row(userSourcedId=user, flag=rng.choice(_FLAGS))
        guardian_given = rng.choice(_GIVEN_NAMES)
        phone = f"+1555{rng.randrange(10_000_000):07d}"
        email = f"{guardian_given}.{family}.{guardian}@mail.{DOMAIN}".lower()
        self.out["users.csv"].row(
            sourcedId=guardian,
            username=email,
            givenName=guardian_given,
            familyName=family,
            email=email,
            phone=phone,
            sms=phone,
        )
        self.out["relationships.csv"].row(
            userSourcedId=user,
            relationshipUserSourcedId=guardian,
            relationshipRole=rng.choice(_GUARDIAN_ROLES),
        )

    def _role(self, user: str, org: str, role: str, *, grade: str) -> None:
        _sourced_id, _title, _type, start, end = SESSIONS[0]
        self.out["roles.csv"].row(
            userSourcedId=user,
            orgSourcedId=org,
            role=role,
            sessionSourcedId=SCHOOL_YEAR_SESSION,
            grade=grade,
            isPrimary="TRUE",
            roleStartDate=start,
            roleEndDate=end,
        )

    def _demographics(self, user: str, grade: str) -> None:
        rng = self.rng
        birth_year = int(SCHOOL_YEAR) - 6 - int(grade)
        races = rng.sample(_RACES, 2 if rng.random() < 0.05 else 1)
        self.out["demographics.csv"].row(
            userSourcedId=user,
            sex=rng.choice(("male", "female")),
            birthDate=f"{birth_year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            birthCity=rng.choice(_TOWNS),
            birthState=rng.choice(_STATES),
            birthCountry="US",
            ethnicityCodes="hispanicOrLatinoEthnicity" if rng.random() < 0.2 else "",
            raceCodes=",".join(races),
        )

    def _name(self) -> tuple[str, str]:
        return self.rng.choice(_GIVEN_NAMES), self.rng.choice(_FAMILY_NAMES)
