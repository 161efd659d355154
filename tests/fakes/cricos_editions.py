"""Monthly editions of the CRICOS register for the fake data.gov.au CKAN server (fake_ckan.py).

Source of truth: ../shared/reference/cricos-data.md and ../shared/samples/cricos/ (see SOURCES.md there).

Edition 1 is the real register as published around 2026-05-01: the Institutions and Locations CSVs are the
official files from the samples, parsed as CSV and kept exactly as found (including the UTF-8 BOM that starts
`CRICOS Locations.csv`, the two trailing all-empty rows of Institutions, the 255-character trading names, the
location with an empty City/State and the 4 duplicate (provider, Location Name) pairs). Courses and Course
Locations are synthetic (the real files are too large to ship) but use the real column layout and value formats
of the courses excerpt and the 2023 XLSX: money strings "$13,300.00", hours "1,050", "4.00" hours/week, ASCED
"08 - Management and Commerce" labels (with the real trailing spaces and n.f.d/n.f.d. inconsistencies), Yes/No
flags, 6-digit+letter and 7-digit course codes, and VET National Codes taken from nrt_codes.register_codes() so
that a CRICOS course links to the fake TGA register.

Every later edition is derived deterministically from the one before (providers renamed, added and removed,
fees and capacities changed, courses added, expired and removed, locations added and removed). A resource whose
content does not change between editions keeps its version, and so its last_modified, hash and size.

Scales: "small" keeps 40 real providers (with their real locations) and a few hundred courses; "full" keeps all
1,533 providers, about 26,700 courses and 46,000 course locations (about 78,000 rows in all).

Public API: Register(scale, seed).edition(n) -> Edition; Register.csv_bytes(table, version);
Edition.rows(table) (CSV cell tuples, header excluded, trailing blank rows included); HEADERS; RESOURCES.
"""

import bisect
import csv
import datetime as _dt
import hashlib
import io
import os
import random
import re
import sys
from pathlib import Path

import nrt_codes

PACKAGE_ID = "e5ae7059-bfa8-4fa4-a5c0-c13cf3520193"
PACKAGE_NAME = "cricos"
BOM = "\ufeff"

TABLES = ("institutions", "courses", "locations", "course_locations")

# Resource ids and names are the real ones (reference §1.1); they never change between editions.
RESOURCES = {
    "institutions": {"id": "7f6941f3-5327-4db7-b556-5f16d77f63c1", "name": "CRICOS Institutions.csv",
                     "file": "cricos-institutions.csv"},
    "courses": {"id": "48cacf69-2082-415e-9595-f17d0c3a4af0", "name": "CRICOS Courses.csv",
                "file": "cricos-courses.csv"},
    "locations": {"id": "45d29535-1360-4486-8242-3850e61b5524", "name": "CRICOS Locations.csv",
                  "file": "cricos-locations.csv"},
    "course_locations": {"id": "4cd2de02-8ba3-4eb2-bac2-fe272cae3f5f", "name": "CRICOS Course Locations.csv",
                         "file": "cricos-course-locations.csv"},
}

HEADERS = {
    "institutions": (
        "CRICOS Provider Code", "Trading Name", "Institution Name", "Institution Type", "Institution Capacity",
        "Website", "Postal Address Line 1", "Postal Address Line 2", "Postal Address Line 3",
        "Postal Address Line 4", "Postal Address City", "Postal Address State", "Postal Address Postcode"),
    "courses": (
        "CRICOS Provider Code", "Institution Name", "CRICOS Course Code", "Course Name", "VET National Code",
        "Dual Qualification", "Field of Education 1 Broad Field", "Field of Education 1 Narrow Field",
        "Field of Education 1 Detailed Field", "Field of Education 2 Broad Field",
        "Field of Education 2 Narrow Field", "Field of Education 2 Detailed Field", "Course Level",
        "Foundation Studies", "Work Component", "Work Component Hours/Week", "Work Component Weeks",
        "Work Component Total Hours", "Course Language", "Duration (Weeks)", "Tuition Fee", "Non Tuition Fee",
        "Estimated Total Course Cost", "Expired"),
    # The real file starts with a UTF-8 BOM, which csv reads as part of the first header cell.
    "locations": (
        BOM + "CRICOS Provider Code", "Institution Name", "Location Name", "Location Type", "Address Line 1",
        "Address Line 2", "Address Line 3", "Address Line 4", "City", "State", "Postcode"),
    "course_locations": (
        "CRICOS Provider Code", "Institution Name", "CRICOS Course Code", "Location Name", "Location City",
        "Location State"),
}

# Column indexes used by the generators.
I_CODE, I_TRADING, I_NAME, I_TYPE, I_CAP, I_WEB = 0, 1, 2, 3, 4, 5
I_CITY, I_STATE, I_POSTCODE = 10, 11, 12
L_CODE, L_INST, L_NAME, L_TYPE, L_LINE1, L_LINE2 = 0, 1, 2, 3, 4, 5
L_CITY, L_STATE, L_POSTCODE = 8, 9, 10
C_CODE, C_INST, C_COURSE, C_NAME, C_VET = 0, 1, 2, 3, 4
C_LEVEL, C_DURATION, C_TUITION, C_NONTUITION, C_TOTAL, C_EXPIRED = 12, 19, 20, 21, 22, 23
CL_CODE, CL_INST, CL_COURSE, CL_LOC, CL_CITY, CL_STATE = 0, 1, 2, 3, 4, 5

# Trailing all-empty rows per CSV (reference §4): two after Institutions and Courses, none after Locations;
# the Course Locations CSV was never seen, and the XLSX export (which the CSVs mirror) ends it on data.
TRAILING_BLANK_ROWS = {"institutions": 2, "courses": 2, "locations": 0, "course_locations": 0}

SAMPLES_ENV = "CRICOS_SAMPLES_DIR"


def samples_dir():
    """The directory of the real 2026 CSVs: $CRICOS_SAMPLES_DIR, else ../shared beside the repository."""
    env = os.environ.get(SAMPLES_ENV)
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "samples" / "cricos" / "datagovau-csv-2026"


def xlsx_sample_path():
    return samples_dir().parent / "datagovau-xlsx-2023-01-03" / \
        "cricos-providers-courses-and-locations-as-at-2023-1-3-7-59-17.TRIMMED.xlsx"


def _read_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        rows = [tuple(r) for r in csv.reader(f)]
    return rows[0], rows[1:]


# --------------------------------------------------------------------------------------------------------------
# Edition calendar. Dates before the first fake edition come from the reference (§1.2); edition 1 is the edition
# the sample CSVs belong to (2026-05-01), editions 2-4 are the next real ones, later ones are the first business
# day of the month, now and then a few days late as the real ones are.

HISTORIC_EDITION_DATES = [
    "2021-07-30", "2021-08-31", "2021-09-30", "2021-10-31", "2021-11-30", "2021-12-31", "2022-01-31",
    "2022-02-28", "2022-03-31", "2022-04-30", "2022-06-01", "2022-07-01", "2022-08-01", "2022-09-01",
    "2022-10-04", "2022-11-01", "2022-12-01", "2023-01-03", "2023-02-01", "2023-03-01", "2023-04-12",
    "2023-05-01", "2023-06-01", "2023-07-03", "2023-08-07", "2023-09-01", "2023-10-05", "2023-11-01",
    "2023-12-01", "2024-01-02", "2024-02-01", "2024-03-01", "2024-04-02", "2024-05-01", "2024-06-03",
    "2024-07-01", "2024-08-01", "2024-09-02", "2024-10-01", "2024-11-04", "2024-12-02", "2025-01-02",
    "2025-02-03", "2025-03-11", "2025-04-01", "2025-05-01", "2025-06-03", "2025-07-01", "2025-08-01",
    "2025-09-01", "2025-10-01", "2025-11-03", "2025-12-01", "2026-01-02", "2026-02-02", "2026-03-02",
    "2026-04-01",
]
FIRST_EDITION_DATES = ["2026-05-01", "2026-06-01", "2026-07-01", "2026-08-03"]

# Snapshot resources whose ids and generation times the reference records (§1.1).
KNOWN_SNAPSHOTS = {
    "2023-01-03": ("7b3d33a0-f9c6-4d32-8799-9cecd7fc121c", (7, 59, 17)),
    "2026-03-02": ("a737a81a-512d-4e97-b982-1c3be34bbe5a", (11, 34, 49)),
    "2026-07-01": ("051a159a-182b-4ca7-a4ff-8cafce78181d", None),
}


def edition_date(n):
    if n < 1:
        raise ValueError("editions start at 1")
    if n <= len(FIRST_EDITION_DATES):
        return _dt.date.fromisoformat(FIRST_EDITION_DATES[n - 1])
    months = n - 1
    year, month = 2026 + (4 + months) // 12, (4 + months) % 12 + 1
    day = _dt.date(year, month, 1)
    while day.weekday() >= 5:
        day += _dt.timedelta(days=1)
    if n % 7 == 3:  # like 2023-04-12 or 2025-03-11: the odd edition that comes out days late
        day += _dt.timedelta(days=7 + n % 3)
        while day.weekday() >= 5:
            day += _dt.timedelta(days=1)
    return day


def _stable_uuid(*parts):
    h = hashlib.sha1("/".join(str(p) for p in parts).encode()).hexdigest()
    return "%s-%s-4%s-%s%s-%s" % (h[:8], h[8:12], h[13:16], "89ab"[int(h[16], 16) % 4], h[17:20], h[20:32])


def _business_time(rnd, lo=7, hi=16):
    return rnd.randint(lo, hi), rnd.randint(0, 59), rnd.randint(0, 59)


def snapshot_name(date, hms):
    """The dated snapshot's file name, with the real non-zero-padded date and time and the early odd names."""
    if date.isoformat() == "2022-04-30":
        return "cricos-providers-courses-and-locations-as-at-30.04.2022.xlsx"
    if date.isoformat() == "2022-01-31":
        return "2022-01-31-cricos-providers-courses-and-locations.xlsx.xlsx"
    h, m, s = hms
    return "cricos-providers-courses-and-locations-as-at-%d-%d-%d-%d-%02d-%02d.xlsx" % (
        date.year, date.month, date.day, h, m, s)


def snapshot_info(date, index):
    """(id, name, format, created datetime) of the dated XLSX snapshot of the edition published on `date`."""
    rnd = random.Random("cricos-snapshot/%s" % date.isoformat())
    rid, hms = KNOWN_SNAPSHOTS.get(date.isoformat(), (None, None))
    rid = rid or _stable_uuid("cricos-snapshot", date.isoformat())
    hms = hms or _business_time(rnd)
    # Formats are inconsistent on the real package: pick snapshots by name, never by format (reference §1.1).
    fmt = "XLSX"
    if index % 9 == 4:
        fmt = "excel (.xlsx)"
    if date.isoformat() == "2022-02-28":
        fmt = "XLS"
    created = _dt.datetime(date.year, date.month, date.day, *hms, rnd.randint(0, 999999))
    return {"id": rid, "name": snapshot_name(date, hms), "format": fmt, "created": created,
            "date": date, "generated": hms}


# --------------------------------------------------------------------------------------------------------------
# Vocabulary for synthetic courses.

BROAD = {
    "01": "01 - Natural and Physical Sciences", "02": "02 - Information Technology",
    "03": "03 - Engineering and Related Technologies", "04": "04 - Architecture and Building",
    "05": "05 - Agriculture, Environmental and Related Studies", "06": "06 - Health", "07": "07 - Education",
    "08": "08 - Management and Commerce", "09": "09 - Society and Culture", "10": "10 - Creative Arts",
    "11": "11 - Food, Hospitality and Personal Services", "12": "12 - Mixed Field Programmes",
}

# Narrow|Detailed|weight: every (narrow, detailed) pair of the 2023 XLSX courses, verbatim (trailing spaces and
# the n.f.d / n.f.d. / n.f.c. spellings included), weighted by how often it occurs there.
FOE_TABLE = """\
0100 - Natural and Physical Sciences|010000 - Natural and Physical Sciences, n.f.d.|60
0101 - Mathematical Sciences|010100 - Mathematical Sciences, n.f.d.|11
0101 - Mathematical Sciences|010101 - Mathematics|8
0101 - Mathematical Sciences|010103 - Statistics|4
0101 - Mathematical Sciences|010199 - Mathematical Sciences, n.e.c.|7
0103 - Physics and Astronomy|010301 - Physics|5
0105 - Chemical Sciences|010599 - Chemical Sciences, n.e.c.|4
0107 - Earth Sciences|010700 - Earth Sciences, n.f.d.|2
0107 - Earth Sciences|010703 - Geology|2
0109 - Biological Sciences|010900 - Biological Sciences, n.f.d.|14
0109 - Biological Sciences|010901 - Biochemistry and Cell Biology|7
0109 - Biological Sciences|010905 - Ecology and Evolution|2
0109 - Biological Sciences|010907 - Marine Science|7
0109 - Biological Sciences|010909 - Genetics|2
0109 - Biological Sciences|010915 - Zoology|2
0109 - Biological Sciences|010999 - Biological Sciences, n.e.c.|20
0199 - Other Natural and Physical Sciences|019900 - Natural and Physical Sciences, n.f.d.|5
0199 - Other Natural and Physical Sciences|019901 - Medical Science|57
0199 - Other Natural and Physical Sciences|019905 - Food Science and Biotechnology|21
0199 - Other Natural and Physical Sciences|019907 - Pharmacology|3
0199 - Other Natural and Physical Sciences|019909 - Laboratory Technology|9
0199 - Other Natural and Physical Sciences|019999 - Natural and Physical Sciences, n.e.c.|67
0200 - Information Technology|020000 - Information Technology, n.f.d.|50
0201 - Computer Science|020100 - Computer Science, n.f.d.|28
0201 - Computer Science|020103 - Programming|1
0201 - Computer Science|020113 - Networks and Communications|3
0201 - Computer Science|020115 - Computer Graphics|2
0201 - Computer Science|020117 - Operating Systems|1
0201 - Computer Science|020119 - Artificial Intelligence|3
0201 - Computer Science|020199 - Computer Science, n.e.c.|27
0203 - Information Systems|020300 - Information Systems, n.f.d.|10
0203 - Information Systems|020305 - Systems Analysis and Design|1
0203 - Information Systems|020307 - Decision Support Systems|3
0203 - Information Systems|020399 - Information Systems, n.e.c.|18
0299 - Other Information Technology|029900 - Information Technology, n.f.d.|1
0299 - Other Information Technology|029901 - Security Science|11
0299 - Other Information Technology|029999 - Information Technology, n.e.c.|58
0300 - Engineering and Related Technologies|030000 - Engineering and Related Technologies, n.f.d.|60
0301 - Manufacturing Engineering and Technology|030113 - Cabinet Making|1
0301 - Manufacturing Engineering and Technology|030199 - Manufacturing Engineering and Technology, n.e.c.|3
0303 - Process and Resources Engineering|030301 - Chemical Engineering|17
0303 - Process and Resources Engineering|030303 - Mining Engineering|4
0303 - Process and Resources Engineering|030305 - Materials Engineering|2
0303 - Process and Resources Engineering|030399 - Process and Resources Engineering, n.e.c.|4
0305 - Automotive Engineering and Technology|030503 - Vehicle Mechanics|2
0305 - Automotive Engineering and Technology|030599 - Automotive Engineering and Technology, n.e.c.|2
0307 - Mechanical and Industrial Engineering and Technology|030701 - Mechanical Engineering|3
0307 - Mechanical and Industrial Engineering and Technology|030707 - Metal Fitting, Turning and Machining|1
0309 - Civil Engineering|030900 - Civil Engineering, n.f.d.|5
0309 - Civil Engineering|030903 - Structural Engineering|3
0309 - Civil Engineering|030907 - Water and Sanitary Engineering|1
0309 - Civil Engineering|030909 - Transport Engineering|4
0309 - Civil Engineering|030911 - Geotechnical Engineering|1
0309 - Civil Engineering|030999 - Civil Engineering, n.e.c.|3
0311 - Geomatic Engineering|031101 - Surveying|4
0311 - Geomatic Engineering|031103 - Mapping Science|1
0311 - Geomatic Engineering|031199 - Geomatic Engineering, n.e.c.|4
0313 - Electrical and Electronic Engineering and Technology|031300 - Electrical and Electronic Engineering and Technology, n.f.d.|6
0313 - Electrical and Electronic Engineering and Technology|031301 - Electrical Engineering|2
0313 - Electrical and Electronic Engineering and Technology|031303 - Electronic Engineering|3
0313 - Electrical and Electronic Engineering and Technology|031305 - Computer Engineering|3
0313 - Electrical and Electronic Engineering and Technology|031307 - Communications Technologies|1
0313 - Electrical and Electronic Engineering and Technology|031399 - Electrical and Electronic Engineering and Technology, n.e.c.|2
0315 - Aerospace Engineering and Technology|031500 - Aerospace Engineering and Technology, n.f.d.|1
0315 - Aerospace Engineering and Technology|031501 - Aerospace Engineering|2
0315 - Aerospace Engineering and Technology|031599 - Aerospace Engineering and Technology, n.e.c.|1
0317 - Maritime Engineering and Technology|031701 - Maritime Engineering|3
0317 - Maritime Engineering and Technology|031705 - Marine Craft Operation|2
0317 - Maritime Engineering and Technology|031799 - Maritime Engineering and Technology, n.e.c.|1
0399 - Other Engineering and Related Technologies|039900 - Engineering and Related Technologies, n.f.d.|4
0399 - Other Engineering and Related Technologies|039901 - Environmental Engineering|4
0399 - Other Engineering and Related Technologies|039903 - Biomedical Engineering|1
0399 - Other Engineering and Related Technologies|039999 - Engineering and Related Technologies, n.e.c.|40
0400 - Architecture and Building|040000 - Architecture and Building, n.f.d.|2
0401 - Architecture and Urban Environment|040101 - Architecture|21
0401 - Architecture and Urban Environment|040103 - Urban Design and Regional Planning|26
0401 - Architecture and Urban Environment|040107 - Interior and Environmental Design|12
0401 - Architecture and Urban Environment|040199 - Architecture and Urban Environment, n.e.c.|29
0403 - Building|040300 - Building, n.f.d.|5
0403 - Building|040301 - Building Science and Technology|14
0403 - Building|040303 - Building Construction Management|15
0403 - Building|040305 - Building Surveying|2
0403 - Building|040309 - Bricklaying and Stonemasonry|1
0403 - Building|040311 - Carpentry and Joinery|4
0403 - Building|040313 - Ceiling, Wall and Floor Fixing|1
0403 - Building|040399 - Building, n.e.c.|6
0501 - Agriculture|050101 - Agricultural Science|27
0501 - Agriculture|050105 - Animal Husbandry|2
0501 - Agriculture|050199 - Agriculture, n.e.c.|16
0503 - Horticulture and Viticulture|050300 - Horticulture and Viticulture, n.f.d|1
0503 - Horticulture and Viticulture|050301 - Horticulture|5
0507 - Fisheries Studies|050701 - Aquaculture|3
0509 - Environmental Studies|050900 - Environmental Studies, n.f.d.|14
0509 - Environmental Studies|050901 - Land, Parks and Wildlife Management|13
0509 - Environmental Studies|050999 - Environmental Studies, n.e.c.|16
0599 - Other Agriculture, Environmental and Related Studies|059999 - Agriculture, Environmental and Related Studies, n.e.c.|8
0600 - Health|060000 - Health, n.f.d.|7
0601 - Medical Studies|060100 - Medical Studies, n.f.d.|17
0601 - Medical Studies|060101 - General Medicine|22
0601 - Medical Studies|060103 - Surgery|7
0601 - Medical Studies|060105 - Psychiatry|7
0601 - Medical Studies|060107 - Obstetrics and Gynaecology|1
0601 - Medical Studies|060115 - Radiology|2
0601 - Medical Studies|060117 - Internal Medicine|3
0601 - Medical Studies|060199 - Medical Studies, n.e.c.|20
0603 - Nursing|060300 - Nursing, n.f.d.|7
0603 - Nursing|060301 - General Nursing|28
0603 - Nursing|060303 - Midwifery|6
0603 - Nursing|060305 - Mental Health Nursing|2
0603 - Nursing|060309 - Critical Care Nursing|3
0603 - Nursing|060399 - Nursing, n.e.c.|15
0605 - Pharmacy|060501 - Pharmacy|33
0607 - Dental Studies|060701 - Dentistry|15
0607 - Dental Studies|060705 - Dental Technology|1
0607 - Dental Studies|060799 - Dental Studies, n.e.c.|4
0611 - Veterinary Studies|061101 - Veterinary Science|16
0611 - Veterinary Studies|061103 - Veterinary Assisting|5
0611 - Veterinary Studies|061199 - Veterinary Studies, n.e.c.|7
0613 - Public Health|061300 - Public Health, n.f.d.|12
0613 - Public Health|061301 - Occupational Health and Safety|9
0613 - Public Health|061303 - Environmental Health|2
0613 - Public Health|061307 - Health Promotion|4
0613 - Public Health|061309 - Community Health|2
0613 - Public Health|061311 - Epidemiology|8
0613 - Public Health|061399 - Public Health, n.e.c.|25
0615 - Radiography|061501 - Radiography|9
0617 - Rehabilitation Therapies|061700 - Rehabilitation Therapies, n.f.d.|3
0617 - Rehabilitation Therapies|061701 - Physiotherapy|17
0617 - Rehabilitation Therapies|061703 - Occupational Therapy|14
0617 - Rehabilitation Therapies|061705 - Chiropractic and Osteopathy|2
0617 - Rehabilitation Therapies|061707 - Speech Pathology|12
0617 - Rehabilitation Therapies|061709 - Audiology|1
0617 - Rehabilitation Therapies|061713 - Podiatry|1
0617 - Rehabilitation Therapies|061799 - Rehabilitation Therapies, n.e.c.|3
0619 - Complementary Therapies|061999 - Complementary Therapies, n.e.c.|2
0699 - Other Health|069900 - Health, n.f.d.|5
0699 - Other Health|069901 - Nutrition and Dietetics|21
0699 - Other Health|069903 - Human Movement|22
0699 - Other Health|069905 - Paramedical Studies|6
0699 - Other Health|069999 - Health, n.e.c.|32
0700 - Education|070000 - Education, n.f.d.|4
0701 - Teacher Education|070100 - Teacher Education, n.f.c.|21
0701 - Teacher Education|070101 - Teacher Education: Early Childhood|22
0701 - Teacher Education|070103 - Teacher Education: Primary|14
0701 - Teacher Education|070105 - Teacher Education: Secondary|29
0701 - Teacher Education|070111 - Teacher Education: Higher Education|3
0701 - Teacher Education|070115 - English as a Second Language Teaching|2
0701 - Teacher Education|070199 - Teacher Education, n.e.c.|10
0703 - Curriculum and Education Studies|070300 - Curriculum and Education Studies, n.f.d|2
0703 - Curriculum and Education Studies|070303 - Education Studies|32
0799 - Other Education|079900 - Education, n.f.d.|2
0799 - Other Education|079999 - Education, n.e.c.|12
0800 - Management and Commerce|080000 - Management and Commerce, n.f.d.|55
0801 - Accounting|080101 - Accounting|83
0803 - Business and Management|080300 - Business and Management, n.f.d.|40
0803 - Business and Management|080301 - Business Management|85
0803 - Business and Management|080303 - Human Resource Management|5
0803 - Business and Management|080309 - Industrial Relations|1
0803 - Business and Management|080311 - International Business|18
0803 - Business and Management|080313 - Public and Health Care Administration|5
0803 - Business and Management|080315 - Project Management|28
0803 - Business and Management|080319 - Hospitality Management|7
0803 - Business and Management|080321 - Farm Management and Agribusiness|14
0803 - Business and Management|080323 - Tourism Management|11
0803 - Business and Management|080399 - Business and Management, n.e.c.|66
0805 - Sales and Marketing|080500 - Sales and Marketing, n.f.d.|1
0805 - Sales and Marketing|080503 - Real Estate|1
0805 - Sales and Marketing|080505 - Marketing|22
0807 - Tourism|080701 - Tourism|12
0809 - Office Studies|080999 - Office Studies, n.e.c.|1
0811 - Banking, Finance and Related Fields|081100 - Banking, Finance and Related Fields, n.f.d.|3
0811 - Banking, Finance and Related Fields|081101 - Banking and Finance|30
0811 - Banking, Finance and Related Fields|081103 - Insurance and Actuarial Studies|20
0811 - Banking, Finance and Related Fields|081199 - Banking, Finance and Related Fields, n.e.c.|7
0899 - Other Management and Commerce|089901 - Purchasing, Warehousing and Distribution|2
0899 - Other Management and Commerce|089903 - Valuation|5
0899 - Other Management and Commerce|089999 - Management and Commerce, n.e.c.|51
0900 - Society and Culture|090000 - Society and Culture, n.f.d.|83
0901 - Political Science and Policy Studies |090100 - Political Science and Policy Studies, n.f.d.|29
0901 - Political Science and Policy Studies |090101 - Political Science|24
0901 - Political Science and Policy Studies |090103 - Policy Studies|22
0903 - Studies in Human Society|090300 - Studies in Human Society, n.f.d.|33
0903 - Studies in Human Society|090301 - Sociology|7
0903 - Studies in Human Society|090303 - Anthropology|1
0903 - Studies in Human Society|090305 - History|5
0903 - Studies in Human Society|090307 - Archaeology|2
0903 - Studies in Human Society|090309 - Human Geography|5
0903 - Studies in Human Society|090399 - Studies in Human Society, n.e.c.|34
0905 - Human Welfare Studies and Services|090500 - Human Welfare Studies and Services, n.f.d.|2
0905 - Human Welfare Studies and Services|090501 - Social Work|31
0905 - Human Welfare Studies and Services|090503 - Childrens Services|4
0905 - Human Welfare Studies and Services|090505 - Youth Work|5
0905 - Human Welfare Studies and Services|090507 - Care for the Aged|3
0905 - Human Welfare Studies and Services|090509 - Care for the Disabled|1
0905 - Human Welfare Studies and Services|090513 - Counselling|5
0905 - Human Welfare Studies and Services|090515 - Welfare Studies|7
0905 - Human Welfare Studies and Services|090599 - Human Welfare Studies and Services, n.e.c.|6
0907 - Behavioural Science|090700 - Behavioural Science, n.f.d.|1
0907 - Behavioural Science|090701 - Psychology|78
0907 - Behavioural Science|090799 - Behavioural Science, n.e.c.|5
0909 - Law|090900 - Law, n.f.d.|80
0909 - Law|090901 - Business and Commercial Law|14
0909 - Law|090903 - Constitutional Law|2
0909 - Law|090905 - Criminal Law|3
0909 - Law|090909 - International Law|9
0909 - Law|090911 - Taxation Law|3
0909 - Law|090913 - Legal Practice|6
0909 - Law|090999 - Law, n.e.c.|74
0911 - Justice and Law Enforcement|091101 - Justice Administration|1
0911 - Justice and Law Enforcement|091103 - Legal Studies|4
0911 - Justice and Law Enforcement|091105 - Police Studies|22
0911 - Justice and Law Enforcement|091199 - Justice and Law Enforcement, n.e.c.|4
0913 - Librarianship, Information Management and Curatorial Studies|091303 - Curatorial Studies|8
0915 - Language and Literature|091501 - ELICOS|30
0915 - Language and Literature|091515 - Eastern Asian Languages|1
0915 - Language and Literature|091519 - Translating and Interpreting|22
0915 - Language and Literature|091521 - Linguistics|15
0915 - Language and Literature|091523 - Literature|6
0915 - Language and Literature|091599 - Language and Literature, n.e.c.|7
0917 - Philosophy and Religious Studies|091701 - Philosophy|14
0917 - Philosophy and Religious Studies|091703 - Religious Studies|18
0919 - Economics and Econometrics|091900 - Economics and Econometrics, n.f.d|6
0919 - Economics and Econometrics|091901 - Economics|65
0919 - Economics and Econometrics|091903 - Econometrics|8
0921 - Sport and Recreation|092101 - Sport and Recreation Activities|1
0921 - Sport and Recreation|092103 - Sports Coaching, Officiating and Instruction|3
0921 - Sport and Recreation|092199 - Sport and Recreation, n.e.c.|2
0999 - Other Society and Culture|099903 - Criminology|25
0999 - Other Society and Culture|099905 - Security Services|3
0999 - Other Society and Culture|099999 - Society and Culture, n.e.c.|66
1000 - Creative Arts|100000 - Creative Arts, n.f.d.|2
1001 - Performing Arts |100100 - Performing Arts, n.f.d.|1
1001 - Performing Arts |100101 - Music|57
1001 - Performing Arts |100103 - Drama and Theatre Studies|1
1003 - Visual Arts and Crafts|100300 - Visual Arts and Crafts, n.f.d.|4
1003 - Visual Arts and Crafts|100301 - Fine Arts|12
1003 - Visual Arts and Crafts|100303 - Photography|2
1003 - Visual Arts and Crafts|100309 - Floristry|1
1003 - Visual Arts and Crafts|100399 - Visual Arts and Crafts, n.e.c.|12
1005 - Graphic and Design Studies|100500 - Graphic and Design Studies, n.f.d.|2
1005 - Graphic and Design Studies|100501 - Graphic Arts and Design Studies|16
1005 - Graphic and Design Studies|100503 - Textile Design|2
1005 - Graphic and Design Studies|100505 - Fashion Design|4
1005 - Graphic and Design Studies|100599 - Graphic and Design Studies, n.e.c.|5
1007 - Communication and Media Studies|100700 - Communication and Media Studies, n.f.d.|35
1007 - Communication and Media Studies|100701 - Audio Visual Studies|5
1007 - Communication and Media Studies|100703 - Journalism|26
1007 - Communication and Media Studies|100705 - Written Communication|9
1007 - Communication and Media Studies|100799 - Communication and Media Studies, n.e.c.|31
1099 - Other Creative Arts|109999 - Creative Arts, n.e.c.|7
1101 - Food and Hospitality|110101 - Hospitality|11
1101 - Food and Hospitality|110107 - Baking and Pastrymaking|11
1101 - Food and Hospitality|110109 - Cookery|13
1101 - Food and Hospitality|110199 - Food and Hospitality, n.e.c.|2
1103 - Personal Services|110301 - Beauty Therapy|6
1103 - Personal Services|110303 - Hairdressing|3
1201 - General Education Programmes|120101 - General Primary and Secondary Education Programmes|9
1201 - General Education Programmes|120199 - General Education Programmes, n.e.c.|10
1299 - Other Mixed Field Programmes|129999 - Mixed Field Programmes, n.e.c.|196"""

# Fields of education that VET courses use, weighted for private colleges and TAFEs (detailed code: weight).
VET_FOE_WEIGHTS = {
    "080301": 30, "080399": 12, "080101": 8, "080315": 8, "080319": 10, "110101": 8, "110109": 18,
    "110107": 3, "090507": 6, "090509": 8, "090503": 6, "070101": 10, "090515": 6, "090513": 2, "020399": 8,
    "020113": 5, "020103": 3, "040311": 6, "040303": 5, "040399": 3, "030503": 4, "030599": 2, "110301": 4,
    "110303": 2, "050301": 2, "080505": 4, "080701": 3, "092103": 2, "100501": 3, "100505": 1, "031303": 1,
    "030707": 1, "061999": 1, "060301": 4, "019909": 1, "080999": 1, "040107": 2, "091519": 1,
}

# Subjects as a VET course name says them, where the ASCED label would read oddly.
VET_SUBJECTS = {
    "080301": ["Leadership and Management", "Business", "Business Administration"],
    "080399": ["Business", "Entrepreneurship and New Business"], "080101": ["Accounting and Bookkeeping"],
    "080315": ["Project Management Practice"], "080319": ["Hospitality Management"],
    "110101": ["Hospitality"], "110109": ["Commercial Cookery", "Kitchen Management"],
    "110107": ["Patisserie"], "090507": ["Ageing Support"], "090509": ["Individual Support"],
    "090503": ["School Based Education Support"], "070101": ["Early Childhood Education and Care"],
    "090515": ["Community Services"], "090513": ["Counselling"], "020399": ["Information Technology"],
    "020113": ["Information Technology Networking"], "020103": ["Programming"], "040311": ["Carpentry"],
    "040303": ["Building and Construction (Building)"], "040399": ["Building and Construction"],
    "030503": ["Automotive Mechanical Technology", "Light Vehicle Mechanical Technology"],
    "030599": ["Automotive Management"], "110301": ["Beauty Therapy"], "110303": ["Hairdressing"],
    "050301": ["Horticulture"], "080505": ["Marketing and Communication"], "080701": ["Travel and Tourism"],
    "092103": ["Sport Coaching"], "100501": ["Graphic Design"], "100505": ["Applied Fashion Design"],
    "031303": ["Electrotechnology Electrician"], "030707": ["Engineering - Mechanical Trade"],
    "061999": ["Remedial Massage"], "060301": ["Nursing"], "019909": ["Laboratory Operations"],
    "080999": ["Business Administration"], "040107": ["Interior Design"], "091519": ["Interpreting"],
}

LEVELS = {
    # level: (weekly tuition range AUD, durations, AQF digit of a matching training-package qualification)
    "Certificate I": ((150, 300), (26, 52), 1),
    "Certificate II": ((150, 320), (26, 52, 40), 2),
    "Certificate III": ((170, 380), (52, 26, 78, 22, 48, 104), 3),
    "Certificate IV": ((170, 400), (52, 26, 40, 78), 4),
    "Diploma": ((180, 420), (52, 78, 104, 26, 44), 5),
    "Advanced Diploma": ((180, 420), (52, 78, 104), 6),
    "Graduate Certificate": ((500, 1100), (26, 18, 52), 7),
    "Graduate Diploma": ((450, 1000), (52, 78, 104), 8),
    "Bachelor Degree": ((600, 1200), (156, 208, 104, 260, 108, 159), None),
    "Bachelor Honours Degree": ((600, 1200), (52, 208, 156, 260), None),
    "Masters Degree (Coursework)": ((600, 1300), (104, 78, 52, 130, 156), None),
    "Masters Degree (Research)": ((600, 1100), (104, 78), None),
    "Masters Degree (Extended)": ((600, 1300), (156, 208), None),
    "Doctoral Degree": ((600, 1100), (208, 156, 212, 159), None),
    "Associate Degree": ((450, 800), (104, 78), None),
    "Non AQF Award": ((300, 480), (12, 24, 36, 48, 52, 26, 15, 10, 40, 60), None),
    "Vocational Short Course": ((0, 0), (0, 1), None),
    "Senior Secondary Certificate of Education": ((300, 900), (44, 88, 80), None),
    "Junior Secondary Studies": ((250, 700), (40, 80, 160, 200), None),
    "Primary School Studies": ((200, 500), (40, 120, 280, 240), None),
    "Kindergarten Studies": ((200, 400), (40,), None),
}

VET_LEVELS = ("Certificate I", "Certificate II", "Certificate III", "Certificate IV", "Diploma",
              "Advanced Diploma", "Graduate Certificate", "Graduate Diploma", "Vocational Short Course")

PROFILE_LEVELS = {
    "uni": [("Masters Degree (Coursework)", 29), ("Bachelor Degree", 24), ("Bachelor Honours Degree", 9),
            ("Doctoral Degree", 7), ("Graduate Certificate", 7), ("Graduate Diploma", 6.5),
            ("Masters Degree (Research)", 3.3), ("Non AQF Award", 3.4), ("Diploma", 3), ("Certificate IV", 1),
            ("Advanced Diploma", 1), ("Masters Degree (Extended)", 0.7), ("Associate Degree", 0.5)],
    "hep": [("Bachelor Degree", 30), ("Masters Degree (Coursework)", 30), ("Graduate Certificate", 10),
            ("Graduate Diploma", 10), ("Diploma", 10), ("Associate Degree", 3), ("Advanced Diploma", 3),
            ("Non AQF Award", 4)],
    "tafe": [("Certificate II", 3), ("Certificate III", 22), ("Certificate IV", 20), ("Diploma", 25),
             ("Advanced Diploma", 12), ("Bachelor Degree", 5), ("Associate Degree", 2), ("Graduate Diploma", 2),
             ("Non AQF Award", 6), ("Vocational Short Course", 3)],
    "private": [("Certificate III", 20), ("Certificate IV", 25), ("Diploma", 28), ("Advanced Diploma", 15),
                ("Graduate Diploma", 4), ("Graduate Certificate", 2), ("Certificate II", 2), ("Certificate I", 0.3),
                ("Non AQF Award", 3), ("Vocational Short Course", 1), ("Bachelor Degree", 1),
                ("Masters Degree (Coursework)", 1)],
    "school": [("Primary School Studies", 25), ("Junior Secondary Studies", 35),
               ("Senior Secondary Certificate of Education", 35), ("Non AQF Award", 5),
               ("Kindergarten Studies", 1)],
    "elicos": [("Non AQF Award", 85), ("Certificate III", 3), ("Certificate IV", 7), ("Diploma", 5)],
}

# Relative number of courses per provider profile (before scaling to the target total).
PROFILE_WEIGHT = {"uni": 220, "hep": 30, "tafe": 100, "private": 9, "school": 5, "elicos": 8}

COURSE_TARGET = {"small": 360, "full": 26700}

SCHOOL_CERT = {"ACT": "ACT Year 12 Certificate", "NSW": "Higher School Certificate",
               "VIC": "Victorian Certificate of Education", "QLD": "Queensland Certificate of Education",
               "SA": "South Australian Certificate of Education", "WA": "Western Australian Certificate of Education",
               "TAS": "Tasmanian Certificate of Education",
               "NT": "Northern Territory Certificate of Education and Training"}

ELICOS_NAMES = ["General English", "English for Academic Purposes", "IELTS Preparation", "English Plus",
                "Cambridge English: First (FCE)", "English for Study and Life (Elementary)",
                "English for Academic Purposes (EAP) Direct Entry", "General English (Intermediate)",
                "English for Business", "Academic English Program", "High School Preparation Program"]

SHORT_COURSES = ["Prepare to work safely in the construction industry", "Provide First Aid",
                 "Provide cardiopulmonary resuscitation", "Serve food and beverage to customers",
                 "Apply WHS requirements, policies and procedures"]

LANGUAGES = [("English", 9960), ("Korean", 10), ("Chinese (NFD)", 10), ("Mandarin", 10), ("Chinese (NEC)", 6),
             ("French", 4)]

NON_TUITION = [0] * 35 + [15000, 17500, 18650, 20000, 25000, 32900, 49900, 50000, 55000, 62600, 74600, 111900,
                          138500, 200500, 500000, 16450, 66900, 93900]

WORDS_A = ["Harbour", "Southern Cross", "Pacific", "Capital", "Coastal", "Summit", "Horizon", "Eureka", "Banksia",
           "Wattle", "Redgum", "Emerald", "Northbridge", "Kingsford", "Riverside", "Sapphire", "Meridian"]
WORDS_B = ["Institute of Technology", "College of Business", "Academy", "Institute of Higher Education",
           "Training College", "Education Group", "Institute", "College of English", "Career College"]
CITIES = [("SYDNEY", "NSW", "2000"), ("Melbourne", "VIC", "3000"), ("BRISBANE CITY", "QLD", "4000"),
          ("Perth", "WA", "6000"), ("ADELAIDE", "SA", "5000"), ("Hobart", "TAS", "7000"),
          ("PARRAMATTA", "NSW", "2150"), ("Darwin City", "NT", "800"), ("Surfers Paradise", "QLD", "4217")]

MONEY_JUNK = ["$1,2x0.00", "TBA", "N/A"]


def money(cents):
    """The CSV's money format: "$13,300.00", "$150.00", "$0.00"."""
    return "$%s.%02d" % (format(cents // 100, ","), cents % 100)


def parse_money(s):
    """Cents of a well-formed money string, or None (blank or unparseable)."""
    m = re.fullmatch(r"\s*\$?\s*([0-9][0-9,]*)(?:\.([0-9]{1,2}))?\s*", s or "")
    if not m:
        return None
    whole = m.group(1).replace(",", "")
    return int(whole) * 100 + int((m.group(2) or "0").ljust(2, "0"))


def _pick(rnd, weighted):
    total = sum(w for _, w in weighted)
    x = rnd.random() * total
    for item, w in weighted:
        x -= w
        if x < 0:
            return item
    return weighted[-1][0]


def _subject(detailed_label):
    """"080399 - Business and Management, n.e.c." -> "Business and Management"."""
    text = detailed_label.split(" - ", 1)[1]
    text = re.sub(r",\s*n\.[efc]\.[dc]?\.?$", "", text).strip()
    if text.startswith("Teacher Education: "):
        text = "Teaching (%s)" % text[len("Teacher Education: "):]
    return text


class _Foe:
    """ASCED triples, indexed by detailed code."""

    def __init__(self):
        self.rows = []
        for line in FOE_TABLE.splitlines():
            narrow, detailed, weight = line.split("|")
            broad = BROAD[detailed[:2]]
            self.rows.append(((broad, narrow, detailed), int(weight)))
        self.by_code = {t[2][:6]: t for t, _ in self.rows}
        self.he = [(t, w) for t, w in self.rows if not t[2].startswith(("1201", "0915", "1299"))]
        self.vet = [(self.by_code[c], w) for c, w in sorted(VET_FOE_WEIGHTS.items()) if c in self.by_code]

    def code(self, c):
        return self.by_code[c]


def _profile(inst):
    name = inst[I_NAME]
    if re.search(r"University", name) and not re.search(r"College|Pty", name):
        return "uni"
    if re.search(r"TAFE|Institute of Technology|Polytechnic", name) or (
            inst[I_TYPE] == "Government" and "Institute" in name):
        return "tafe"
    if re.search(r"Department (of|for) Education|Education Directorate|Schools|Grammar|School|Secondary|High |"
                 r"Christian|Anglican|Catholic|Lutheran|Ladies|Girls|Boys|Primary", name):
        return "school"
    if re.search(r"English|Language|ELICOS", name):
        return "elicos"
    if re.search(r"Higher Education|University College|Institute of Higher", name):
        return "hep"
    return "private"


def _capacity(s):
    try:
        return int(s.replace(",", ""))
    except ValueError:
        return 0


def _fmt_count(n):
    return format(n, ",")


def _sort_key(table, row):
    if table == "institutions":
        return (row[I_CODE],)
    if table == "locations":
        return (row[L_CODE], row[L_NAME].lower())
    if table == "courses":
        return (row[C_CODE], row[C_COURSE])
    return (row[CL_CODE], row[CL_COURSE], row[CL_LOC].lower())


def _insert_sorted(table, rows, new_rows):
    """Insert rows at their sorted place without reordering the existing ones (which are as found)."""
    keys = [_sort_key(table, r) for r in rows]
    out = list(rows)
    for r in sorted(new_rows, key=lambda r: _sort_key(table, r), reverse=True):
        i = bisect.bisect_right(keys, _sort_key(table, r))
        out.insert(i, r)
        keys.insert(i, _sort_key(table, r))
    return out


# --------------------------------------------------------------------------------------------------------------

class Edition:
    """One monthly edition. `data[table]` is the list of row tuples without the trailing blank rows; `version[table]`
    is the number of the edition in which that exact content first appeared; `meta[table]` has the CKAN
    last_modified/hash/size of that version."""

    def __init__(self, number):
        self.number = number
        self.date = edition_date(number)
        self.data = {}
        self.version = {}
        self.meta = {}
        self.changes = {}  # table -> short description of what changed from the previous edition

    def rows(self, table):
        blank = ("",) * len(HEADERS[table])
        return self.data[table] + [blank] * TRAILING_BLANK_ROWS[table]

    def snapshot(self):
        return snapshot_info(self.date, len(HISTORIC_EDITION_DATES) + self.number - 1)


class Register:
    """The editions of one (scale, seed). Editions are built on demand, each from the previous one, and cached."""

    SMALL_PROVIDERS = 40
    # Providers the small scale always keeps, for the quirks they carry: CIT and Macquarie (courses excerpt),
    # 03389E (trading name truncated at 255 characters), 00300K (NT postcodes 08xx), 00366C (location without
    # City/State), 00649C and 04401F (duplicate location names), 01867G (no location at all).
    SMALL_MUST = ["00001K", "00002J", "03389E", "00300K", "00366C", "00649C", "04401F", "01867G"]

    def __init__(self, scale="small", seed=1):
        if scale not in COURSE_TARGET:
            raise ValueError("unknown scale %r" % scale)
        self.scale, self.seed = scale, seed
        self.codes = nrt_codes.register_codes(scale, seed)
        self.foe = _Foe()
        self._editions = {}
        self._csv = {}
        self._qual_by_digit = {}
        for q in self.codes["qualifications"]:
            self._qual_by_digit.setdefault(int(q[3]), []).append(q)

    # -- public ---------------------------------------------------------------------------------------------
    def edition(self, n):
        n = int(n)
        if n < 1:
            raise ValueError("editions start at 1")
        if n not in self._editions:
            prev = self.edition(n - 1) if n > 1 else None
            ed = self._first() if prev is None else self._derive(prev, n)
            self._finish(ed, prev)
            self._editions[n] = ed
        return self._editions[n]

    def csv_bytes(self, table, version):
        """The CSV file of a table version exactly as data.gov.au serves it: UTF-8, LF, RFC-4180 minimal quoting,
        the BOM (for Locations) carried in by the first header cell."""
        key = (table, version)
        if key not in self._csv:
            ed = self.edition(version)
            out = io.StringIO()
            w = csv.writer(out, lineterminator="\n")
            w.writerow(HEADERS[table])
            w.writerows(ed.rows(table))
            self._csv[key] = out.getvalue().encode("utf-8")
        return self._csv[key]

    # -- edition 1 --------------------------------------------------------------------------------------------
    def _first(self):
        ed = Edition(1)
        d = samples_dir()
        ih, inst = _read_csv(d / "CRICOS Institutions.csv")
        lh, locs = _read_csv(d / "CRICOS Locations.csv")
        if tuple(ih) != HEADERS["institutions"] or tuple(lh) != HEADERS["locations"]:
            raise RuntimeError("sample CSV headers differ from the reference layout")
        inst = [r for r in inst if any(r)]  # the two trailing blank rows are re-added by Edition.rows()
        if self.scale == "small":
            keep = self._small_subset(inst, locs)
            inst = [r for r in inst if r[I_CODE] in keep]
            locs = [r for r in locs if r[L_CODE] in keep]
        ed.data["institutions"] = inst
        ed.data["locations"] = locs
        rnd = random.Random("cricos-edition1/%s/%d" % (self.scale, self.seed))
        courses, cls = self._synth_courses(rnd, inst, locs)
        ed.data["courses"] = courses
        ed.data["course_locations"] = cls
        for t in TABLES:
            ed.changes[t] = "initial"
        return ed

    def _small_subset(self, inst, locs):
        nloc = {}
        for r in locs:
            nloc[r[L_CODE]] = nloc.get(r[L_CODE], 0) + 1
        rnd = random.Random("cricos-small/%d" % self.seed)
        keep = list(self.SMALL_MUST)
        pool = [r[I_CODE] for r in inst if r[I_CODE] not in keep and 1 <= nloc.get(r[I_CODE], 0) <= 6]
        # A few more universities and schools so every profile is represented.
        for prof in ("uni", "school", "elicos", "hep", "tafe"):
            cands = [r[I_CODE] for r in inst if _profile(r) == prof and r[I_CODE] in pool]
            keep += rnd.sample(cands, min(2, len(cands)))
        pool = [c for c in pool if c not in keep]
        keep += rnd.sample(pool, self.SMALL_PROVIDERS - len(keep))
        return set(keep)

    # -- synthetic courses ------------------------------------------------------------------------------------
    def _course_counts(self, rnd, inst):
        weights = []
        for r in inst:
            prof = _profile(r)
            cap = max(_capacity(r[I_CAP]), 1)
            w = PROFILE_WEIGHT[prof] * (cap / 300.0) ** 0.3 * rnd.lognormvariate(0, 0.5)
            if self.scale == "small" and prof == "uni":
                w /= 6  # keep the small register small: a few dozen courses per university at most
            weights.append(w)
        total = sum(weights)
        target = COURSE_TARGET[self.scale]
        return [max(1, int(round(target * w / total))) for w in weights]

    def _new_course_code(self, rnd, used, newer):
        while True:
            if newer:
                self._next7 = getattr(self, "_next7", 100000) + rnd.randint(1, 3)
                code = "%07d" % self._next7
            else:
                code = "%06d%s" % (rnd.randint(161, 120999), rnd.choice("ABCDEFGHJKM"))
            if code not in used:
                used.add(code)
                return code

    def _vet_code(self, rnd, level, profile):
        if level == "Vocational Short Course":
            return rnd.choice(self.codes["units"]) if rnd.random() < 0.85 else ""
        if level not in VET_LEVELS:
            return ""
        if level in ("Graduate Certificate", "Graduate Diploma") and profile in ("uni", "hep"):
            return ""
        if profile in ("uni", "hep") and level in ("Diploma", "Advanced Diploma") and rnd.random() < 0.8:
            return ""
        if profile in ("uni", "hep", "elicos") and rnd.random() < 0.2:
            return ""
        if rnd.random() < 0.04:
            return ""
        x = rnd.random()
        if x < 0.04:
            return rnd.choice(self.codes["accredited"])
        if x < 0.05:
            # Accredited in WA, or superseded: a code the TGA register does not know (the link must not fail).
            return "%05d%s" % (rnd.randint(50000, 59999), "WA")
        digit = LEVELS[level][2]
        quals = self._qual_by_digit.get(digit) or self.codes["qualifications"]
        return rnd.choice(quals)

    def _course_name(self, rnd, level, triple, profile, state, vet_code):
        subject = _subject(triple[2])
        if vet_code and triple[2][:6] in VET_SUBJECTS:
            subject = rnd.choice(VET_SUBJECTS[triple[2][:6]])
        if level == "Certificate I":
            return "Certificate I in " + subject
        if level in ("Certificate II", "Certificate III", "Certificate IV"):
            return "%s in %s" % (level, subject)
        if level in ("Diploma", "Advanced Diploma"):
            return "%s of %s" % (level, subject)
        if level == "Graduate Certificate":
            return "Graduate Certificate in " + subject
        if level == "Graduate Diploma":
            return "Graduate Diploma of " + subject
        if level == "Bachelor Degree":
            return "Bachelor of " + subject
        if level == "Bachelor Honours Degree":
            return "Bachelor of %s (Honours)" % subject
        if level == "Masters Degree (Coursework)":
            return rnd.choice(["Master of ", "Master of Professional ", "Master of Applied "]) + subject
        if level == "Masters Degree (Research)":
            return "Master of Philosophy (%s)" % subject
        if level == "Masters Degree (Extended)":
            return "Master of %s (Extended)" % subject
        if level == "Doctoral Degree":
            return rnd.choice(["Doctor of Philosophy (%s)", "Doctor of Philosophy - %s"]) % subject
        if level == "Associate Degree":
            return "Associate Degree in " + subject
        if level == "Vocational Short Course":
            return rnd.choice(SHORT_COURSES)
        if level == "Senior Secondary Certificate of Education":
            return SCHOOL_CERT.get(state, "Senior Secondary Certificate of Education")
        if level == "Junior Secondary Studies":
            return rnd.choice(["Years 7 to 10", "Junior Secondary Years 7-10", "Year 7 to Year 10"])
        if level == "Primary School Studies":
            return rnd.choice(["Primary Years K-6", "Primary School Years 1 to 6", "Primary Years Prep-6"])
        if level == "Kindergarten Studies":
            return "Kindergarten"
        # Non AQF Award
        if triple[2].startswith("091501"):
            return rnd.choice(ELICOS_NAMES)
        if triple[2].startswith("120199"):
            return "Foundation Program"
        return rnd.choice(["Study Abroad", "Exchange Program", "Study Abroad Program"])

    def _course_row(self, rnd, inst, level, code, profile):
        """One course as CSV cells. Dual qualifications get Field of Education 2; money and hours are formatted
        exactly as in the CSV."""
        state = inst[I_STATE]
        foe2 = ("", "", "")
        dual = "No"
        foundation = "No"
        if level in VET_LEVELS and level != "Vocational Short Course":
            triple = _pick(rnd, self.foe.vet) if profile in ("private", "tafe", "elicos") or rnd.random() < 0.5 \
                else _pick(rnd, self.foe.he)
        elif level in ("Senior Secondary Certificate of Education", "Junior Secondary Studies",
                       "Primary School Studies", "Kindergarten Studies"):
            triple = self.foe.code("120101")
        elif level == "Non AQF Award":
            x = rnd.random()
            if profile in ("elicos", "private") or x < 0.45:
                triple = self.foe.code("091501")
            elif x < 0.55:
                triple = self.foe.code("120199")
                foundation = "Yes"
            else:
                triple = self.foe.code("129999")
        elif level == "Vocational Short Course":
            triple = self.foe.code("040399")
        else:
            triple = _pick(rnd, self.foe.he)
        vet = self._vet_code(rnd, level, profile)
        name = self._course_name(rnd, level, triple, profile, state, vet)
        if level == "Bachelor Degree" and profile in ("uni", "hep") and rnd.random() < 0.2:
            other = _pick(rnd, self.foe.he)
            if other != triple:
                dual, foe2 = "Yes", other
                name = rnd.choice(["%s with the degree of Bachelor of %s", "%s/Bachelor of %s"]) % (
                    name, _subject(other[2]))
        elif vet and level in ("Certificate III", "Certificate IV") and rnd.random() < 0.03:
            other = _pick(rnd, self.foe.vet)
            if other != triple:
                dual, foe2 = "Yes", other
                name = "%s and Diploma of %s" % (name, _subject(other[2]))
        fee_range, durations, _ = LEVELS[level]
        duration = rnd.choice(durations)
        if level == "Non AQF Award" and triple[2].startswith("129999"):
            duration = rnd.choice((13, 26, 52))
        if level == "Vocational Short Course":
            tuition = rnd.choice((15000, 34000, 45000, 90000))
        else:
            weekly = rnd.randint(*fee_range)
            tuition = max(1, duration) * weekly // 100 * 10000
        non_tuition = rnd.choice(NON_TUITION) if level != "Vocational Short Course" else 0
        hw, ww, tw = "", "", ""
        work = "No"
        p_work = {"Certificate III": 0.4, "Certificate IV": 0.35, "Diploma": 0.3, "Masters Degree (Coursework)": 0.2,
                  "Bachelor Degree": 0.15, "Graduate Diploma": 0.25, "Advanced Diploma": 0.15}.get(level, 0.03)
        if profile in ("school", "elicos"):
            p_work = 0
        if rnd.random() < p_work:
            work = "Yes"
            hours = rnd.choice((4, 8, 10, 12, 14, 16, 20, 24, 28, 38, 40)) * 100 + rnd.choice((0, 0, 0, 0, 30, 50))
            weeks = rnd.choice((1, 4, 5, 6, 10, 12, 13, 16, 18, 20, 22, 24, 26, 40, 75))
            hw = "%d.%02d" % divmod(hours, 100) if rnd.random() > 0.08 else ""
            ww = str(weeks)
            tw = _fmt_count(int(round(hours * weeks / 100)))
        elif rnd.random() < 0.3:
            hw, ww, tw = "0.00", "0", "0"
        language = _pick(rnd, LANGUAGES)
        return (inst[I_CODE], inst[I_NAME], code, name, vet, dual, triple[0], triple[1], triple[2],
                foe2[0], foe2[1], foe2[2], level, foundation, work, hw, ww, tw, language, str(duration),
                money(tuition), money(non_tuition), money(tuition + non_tuition), "No")

    def _synth_courses(self, rnd, inst, locs):
        counts = self._course_counts(rnd, inst)
        used = set()
        courses = []
        for r, n in zip(inst, counts):
            profile = _profile(r)
            newer_share = 0.9 if r[I_CODE] >= "04000" else 0.2
            for _ in range(n):
                level = _pick(rnd, PROFILE_LEVELS[profile])
                code = self._new_course_code(rnd, used, rnd.random() < newer_share)
                courses.append(self._course_row(rnd, r, level, code, profile))
        courses.sort(key=lambda c: (c[C_CODE], c[C_COURSE]))
        courses = self._inject_course_quirks(rnd, courses)
        cls = self._synth_course_locations(rnd, courses, locs)
        return courses, cls

    def _inject_course_quirks(self, rnd, courses):
        """The data quirks of reference §4, at their measured rates (scaled), placed deterministically."""
        full = self.scale == "full"
        out = [list(c) for c in courses]
        idx = list(range(len(out)))
        rnd.shuffle(idx)
        take = iter(idx)

        def some(k):
            return [next(take) for _ in range(k)]

        for i in some(530 if full else 7):  # tuition and non-tuition blank, estimated total still set
            out[i][C_TUITION] = out[i][C_NONTUITION] = ""
            if rnd.random() < 0.3:
                out[i][C_TOTAL] = rnd.choice(("$0.00", "$1.00"))  # placeholder totals
        for i in some(40 if full else 2):  # deposits entered as totals: implausibly low for the duration
            out[i][C_TUITION] = money(rnd.choice((25000, 50000, 100000)))
            out[i][C_NONTUITION] = "$0.00"
            out[i][C_TOTAL] = out[i][C_TUITION]
        for i in some(203 if full else 3):  # both parts 0, estimated total set: Est = T + NT fails
            out[i][C_TUITION] = out[i][C_NONTUITION] = "$0.00"
        for i, junk in zip(some(3), MONEY_JUNK):  # unparseable money, one column each
            col = (C_TUITION, C_NONTUITION, C_TOTAL)[MONEY_JUNK.index(junk)]
            out[i][col] = junk
        for i in some(4 if full else 1):  # negative work quantities
            out[i][14], out[i][15], out[i][16], out[i][17] = "Yes", "4.00", "-1", "-4"
        for i in some(2 if full else 1):
            out[i][14], out[i][16], out[i][17] = "Yes", "5", rnd.choice(("-20", "-34"))
        vet_rows = [i for i in idx if out[i][C_VET]]
        for i in vet_rows[:max(1, len(vet_rows) // 200)]:  # "BSB50420 " with a trailing space
            out[i][C_VET] += " "
        # Provider + VET code pairs that repeat (2 pairs in 2026).
        by_prov = {}
        for i in vet_rows[-400:]:
            by_prov.setdefault(out[i][C_CODE], []).append(i)
        pairs = 0
        for prov in sorted(by_prov):
            rows = by_prov[prov]
            if len(rows) >= 2 and pairs < (2 if full else 1):
                out[rows[1]][C_VET] = out[rows[0]][C_VET].strip()
                pairs += 1
        for i in some(90 if full else 3):
            out[i][C_EXPIRED] = "Yes"
        if full:  # the $1.65 M course
            i = next(take)
            out[i][C_TUITION], out[i][C_NONTUITION], out[i][C_TOTAL] = "$1,650,000.00", "$0.00", "$1,650,000.00"
        return [tuple(c) for c in out]

    def _locs_by_provider(self, locs):
        by = {}
        for r in locs:
            by.setdefault(r[L_CODE], []).append(r)
        return by

    def _cl_row(self, course, loc):
        return (course[C_CODE], course[C_INST], course[C_COURSE], loc[L_NAME], loc[L_CITY], loc[L_STATE])

    def _pick_locations(self, rnd, plocs, profile):
        n = len(plocs)
        if n == 0:
            return []
        if profile == "school" and n > 20:
            k = rnd.randint(n // 4, n)
        else:
            k = _pick(rnd, [(1, 60), (2, 20), (3, 9), (4, 5), (5, 3), (6, 3)])
            if n > 10 and rnd.random() < 0.15:
                k = rnd.randint(5, n)
        k = min(k, n)
        return sorted(rnd.sample(range(n), k))

    def _synth_course_locations(self, rnd, courses, locs):
        by = self._locs_by_provider(locs)
        profiles = {}
        cls = []
        no_loc = set(rnd.sample(range(len(courses)), 32 if self.scale == "full" else 2))
        for i, c in enumerate(courses):
            if i in no_loc:
                continue  # courses without any course-location row exist (32 in 2023)
            plocs = by.get(c[C_CODE], [])
            if c[C_CODE] not in profiles:
                profiles[c[C_CODE]] = "school" if c[C_LEVEL] in (
                    "Primary School Studies", "Junior Secondary Studies",
                    "Senior Secondary Certificate of Education") else "other"
            chosen = self._pick_locations(rnd, plocs, profiles[c[C_CODE]])
            rows = sorted((self._cl_row(c, plocs[j]) for j in chosen), key=lambda r: r[CL_LOC].lower())
            cls.extend(rows)
        # Exact duplicate rows (9 in 2023), each right after its original.
        dups = sorted(rnd.sample(range(len(cls)), 9 if self.scale == "full" else 2), reverse=True)
        for j in dups:
            cls.insert(j + 1, cls[j])
        return cls

    # -- later editions -------------------------------------------------------------------------------------
    def _derive(self, prev, n):
        """Edition n from edition n-1. The kind of change cycles so that some resources stay unchanged:
        n = 2, 5, 8, ...  churn: providers renamed/added/removed, capacities, fees, courses, locations (all four)
        n = 3, 6, 9, ...  courses: fees, new/expired/removed courses and their course locations (Courses, CL)
        n = 4, 7, 10, ... providers: capacities, websites, trading names, a location address (Inst., Locations)
        """
        rnd = random.Random("cricos-edition/%s/%d/%d" % (self.scale, self.seed, n))
        ed = Edition(n)
        data = {t: list(prev.data[t]) for t in TABLES}
        kind = (n - 2) % 3
        full = self.scale == "full"
        changes = {t: [] for t in TABLES}
        if kind == 0:
            self._churn_providers(rnd, data, changes, full, n)
            self._churn_courses(rnd, data, changes, full, n)
            self._churn_locations(rnd, data, changes, full)
        elif kind == 1:
            self._churn_courses(rnd, data, changes, full, n)
        else:
            self._tweak_providers(rnd, data, changes, full)
        for t in TABLES:
            ed.data[t] = data[t] if data[t] != prev.data[t] else prev.data[t]
            ed.changes[t] = "; ".join(changes[t]) if ed.data[t] is not prev.data[t] else ""
        return ed

    def _inst_index(self, data):
        return {r[I_CODE]: r for r in data["institutions"]}

    def _rename_everywhere(self, data, code, new_name):
        for t, ci, ni in (("institutions", I_CODE, I_NAME), ("courses", C_CODE, C_INST),
                          ("locations", L_CODE, L_INST), ("course_locations", CL_CODE, CL_INST)):
            data[t] = [r[:ni] + (new_name,) + r[ni + 1:] if r[ci] == code else r for r in data[t]]

    def _remove_provider(self, data, code):
        for t, ci in (("institutions", I_CODE), ("courses", C_CODE), ("locations", L_CODE),
                      ("course_locations", CL_CODE)):
            data[t] = [r for r in data[t] if r[ci] != code]

    def _churn_providers(self, rnd, data, changes, full, n):
        inst = data["institutions"]
        codes = [r[I_CODE] for r in inst]
        # Renames: the Institution Name is denormalised into the three other tables and changes there too.
        for code in rnd.sample(codes, 3 if full else 1):
            old = self._inst_index(data)[code][I_NAME]
            if old.endswith(" Pty Ltd"):
                new = old[:-len(" Pty Ltd")] + " Pty. Ltd."
            elif old.endswith(" Pty. Ltd."):
                new = old[:-len(" Pty. Ltd.")] + " Group Pty Ltd"
            else:
                new = old + " Limited"
            self._rename_everywhere(data, code, new)
            changes["institutions"].append("renamed %s" % code)
        for code in rnd.sample(sorted(set(codes) - set(self.SMALL_MUST)), 3 if full else 1):
            self._remove_provider(data, code)
            for t in TABLES:
                changes[t].append("removed provider %s" % code)
        for _ in range(4 if full else 1):
            self._add_provider(rnd, data, changes, n)
        self._tweak_capacities(rnd, data, changes, full)

    def _next_provider_code(self, data, rnd):
        top = max(int(r[I_CODE][:5]) for r in data["institutions"])
        return "%05d%s" % (top + rnd.randint(1, 3), rnd.choice("ABCDEFGHJKM"))

    def _add_provider(self, rnd, data, changes, n):
        code = self._next_provider_code(data, rnd)
        name = "%s %s Pty Ltd" % (rnd.choice(WORDS_A), rnd.choice(WORDS_B))
        city, state, postcode = rnd.choice(CITIES)
        cap = rnd.choice((40, 60, 80, 120, 150, 250, 400, 1200))
        street = "%d %s Street" % (rnd.randint(1, 400), rnd.choice(("George", "Collins", "Queen", "King", "Hay")))
        inst_row = (code, "", name, "Private", _fmt_count(cap), rnd.choice(("", "www.%s.edu.au" % code.lower())),
                    "Level %d, %s" % (rnd.randint(1, 30), street), "", "", "", city, state, postcode)
        data["institutions"] = _insert_sorted("institutions", data["institutions"], [inst_row])
        locs = []
        for j in range(rnd.choice((1, 1, 2))):
            lcity = city if j == 0 else city.title()  # mixed-case cities, as found
            locs.append((code, name, "%s Campus" % (lcity.title() if j else "Main"),
                         "Location owned and operated by provider", street if j == 0 else "Suite %d" % (j + 1),
                         "", "", "", lcity, state, postcode))
        data["locations"] = _insert_sorted("locations", data["locations"], locs)
        used = {c[C_COURSE] for c in data["courses"]}
        self._next7 = max([int(c) for c in used if c.isdigit()] + [100000])
        courses = [self._course_row(rnd, inst_row, _pick(rnd, PROFILE_LEVELS["private"]),
                                    self._new_course_code(rnd, used, True), "private")
                   for _ in range(rnd.randint(2, 6))]
        data["courses"] = _insert_sorted("courses", data["courses"], courses)
        cls = [self._cl_row(c, locs[k]) for c in courses for k in range(len(locs)) if k == 0 or rnd.random() < 0.5]
        data["course_locations"] = _insert_sorted("course_locations", data["course_locations"], cls)
        for t in TABLES:
            changes[t].append("added provider %s" % code)

    def _tweak_capacities(self, rnd, data, changes, full):
        inst = data["institutions"]
        picks = set(rnd.sample(range(len(inst)), max(2, len(inst) // 50) if full else 2))
        out = []
        for i, r in enumerate(inst):
            if i in picks:
                cap = _capacity(r[I_CAP])
                cap = max(1, int(cap * rnd.choice((0.8, 0.9, 1.1, 1.25, 1.5))))
                r = r[:I_CAP] + (_fmt_count(cap),) + r[I_CAP + 1:]
            out.append(r)
        data["institutions"] = out
        changes["institutions"].append("%d capacities" % len(picks))

    def _tweak_providers(self, rnd, data, changes, full):
        self._tweak_capacities(rnd, data, changes, full)
        inst = data["institutions"]
        i = rnd.randrange(len(inst))
        r = inst[i]
        web = r[I_WEB]
        web = "https://" + web[4:] if web.startswith("www.") else (web or "www.%s.com.au" % r[I_CODE].lower())
        inst[i] = r[:I_WEB] + (web,) + r[I_WEB + 1:]
        j = rnd.randrange(len(inst))
        r = inst[j]
        inst[j] = (r[:I_TRADING] + ((r[I_TRADING] + "; " if r[I_TRADING] else "") + "%s Academy" %
                                    rnd.choice(WORDS_A),) + r[I_TRADING + 1:])
        changes["institutions"].append("website %s, trading name %s" % (inst[i][I_CODE], inst[j][I_CODE]))
        # One location moves: a new street address, keyed in with its NT postcode as 3 digits ("830" for "0830"),
        # the quirk reference §4 reports.
        locs = data["locations"]
        nt = [k for k, r in enumerate(locs) if r[L_POSTCODE].startswith("0")]
        k = rnd.choice(nt) if nt else rnd.randrange(len(locs))
        r = locs[k]
        postcode = r[L_POSTCODE][1:] if r[L_POSTCODE].startswith("0") else r[L_POSTCODE]
        line1 = re.sub(r"^\d+", str(rnd.randint(1, 300)), r[L_LINE1]) if re.match(r"\d", r[L_LINE1]) else \
            "Level %d, %s" % (rnd.randint(1, 9), r[L_LINE1])
        locs[k] = r[:L_LINE1] + (line1,) + r[L_LINE1 + 1:L_POSTCODE] + (postcode,)
        changes["locations"].append("address of %s/%s" % (r[L_CODE], r[L_NAME]))

    def _churn_courses(self, rnd, data, changes, full, n):
        courses = data["courses"]
        inst = self._inst_index(data)
        used = {c[C_COURSE] for c in courses}
        self._next7 = max([int(c) for c in used if c.isdigit()] + [100000])
        out = []
        fee_changes = expired = removed = 0
        removed_codes = set()
        for c in courses:
            x = rnd.random()
            if c[C_EXPIRED] == "Yes" and x < 0.35:
                removed += 1
                removed_codes.add(c[C_COURSE])
                continue  # courses that leave the register simply disappear
            if c[C_EXPIRED] == "No" and x < (0.004 if full else 0.02):
                c = c[:C_EXPIRED] + ("Yes",)
                expired += 1
            elif x > (0.985 if full else 0.95):
                t = parse_money(c[C_TUITION])
                nt = parse_money(c[C_NONTUITION])
                if t and nt is not None:
                    t = int(t * rnd.choice((1.03, 1.05, 1.1)) // 10000 * 10000)
                    c = c[:C_TUITION] + (money(t), money(nt), money(t + nt)) + c[C_EXPIRED:]
                    fee_changes += 1
            out.append(c)
        # New courses at existing providers (and their course locations).
        by = self._locs_by_provider(data["locations"])
        codes = sorted({c[C_CODE] for c in out})
        new = []
        for prov in rnd.sample(codes, min(len(codes), 120 if full else 4)):
            r = inst[prov]
            prof = _profile(r)
            level = _pick(rnd, PROFILE_LEVELS[prof])
            new.append(self._course_row(rnd, r, level, self._new_course_code(rnd, used, True), prof))
        data["courses"] = _insert_sorted("courses", out, new)
        cls = [r for r in data["course_locations"] if r[CL_COURSE] not in removed_codes]
        new_cl = []
        for c in new:
            plocs = by.get(c[C_CODE], [])
            for j in self._pick_locations(rnd, plocs, "other"):
                new_cl.append(self._cl_row(c, plocs[j]))
        data["course_locations"] = _insert_sorted("course_locations", cls, new_cl)
        changes["courses"].append("%d new, %d expired, %d removed, %d fee changes" % (
            len(new), expired, removed, fee_changes))
        changes["course_locations"].append("%d new, removed with %d courses" % (len(new_cl), removed))

    def _churn_locations(self, rnd, data, changes, full):
        locs = data["locations"]
        by = self._locs_by_provider(locs)
        # A provider closes a location: it and its course-location rows disappear (a course may be left with none).
        cands = sorted(p for p, ls in by.items() if len(ls) >= 2)
        gone = []
        for p in rnd.sample(cands, min(len(cands), 2 if full else 1)):
            gone.append((p, by[p][-1][L_NAME]))
        gone_set = set(gone)
        data["locations"] = [r for r in locs if (r[L_CODE], r[L_NAME]) not in gone_set]
        data["course_locations"] = [r for r in data["course_locations"] if (r[CL_CODE], r[CL_LOC]) not in gone_set]
        # A provider opens one: some of its courses move in.
        inst = self._inst_index(data)
        p = rnd.choice(sorted(by))
        if p in inst:
            city, state, postcode = rnd.choice(CITIES)
            loc = (p, inst[p][I_NAME], "%s Campus" % city.title(), "Location owned and operated by provider",
                   "%d %s Road" % (rnd.randint(1, 200), rnd.choice(WORDS_A)), "", "", "", city, state, postcode)
            data["locations"] = _insert_sorted("locations", data["locations"], [loc])
            pc = [c for c in data["courses"] if c[C_CODE] == p]
            new_cl = [self._cl_row(c, loc) for c in pc if rnd.random() < 0.5]
            data["course_locations"] = _insert_sorted("course_locations", data["course_locations"], new_cl)
            changes["locations"].append("opened %s/%s" % (p, loc[L_NAME]))
        changes["locations"].append("closed %s" % ", ".join("%s/%s" % g for g in gone))

    # -- metadata ---------------------------------------------------------------------------------------------
    def _finish(self, ed, prev):
        rnd = random.Random("cricos-published/%s/%d" % (self.scale, ed.number))
        day = ed.date + _dt.timedelta(days=rnd.choice((0, 1, 1, 1, 2)))
        while day.weekday() >= 5:
            day += _dt.timedelta(days=1)
        base = _dt.datetime(day.year, day.month, day.day, *_business_time(rnd, 7, 15))
        self._editions[ed.number] = ed  # csv_bytes() below looks the edition up
        for k, t in enumerate(TABLES):
            if prev is not None and ed.data[t] is prev.data[t]:
                ed.version[t] = prev.version[t]
                ed.meta[t] = prev.meta[t]
                continue
            ed.version[t] = ed.number
            body = self.csv_bytes(t, ed.number)
            when = base + _dt.timedelta(minutes=3 * k + rnd.randint(0, 2), seconds=rnd.randint(0, 59),
                                        microseconds=rnd.randint(0, 999999))
            ed.meta[t] = {"last_modified": when, "hash": hashlib.md5(body).hexdigest(), "size": len(body),
                          "rows": len(ed.rows(t))}

    def published(self, n):
        """When edition n became visible: the earliest last_modified of its changed resources."""
        ed = self.edition(n)
        own = [ed.meta[t]["last_modified"] for t in TABLES if ed.version[t] == n]
        return min(own) if own else ed.meta[TABLES[0]]["last_modified"]


# --------------------------------------------------------------------------------------------------------------
# The other files of the package: the bulk ZIP and the dated XLSX snapshots.

ZIP_MEMBER_PDF = "CRICOS Field Definitions.pdf"


def field_definitions_pdf():
    """A small but valid one-page PDF standing in for the field-definition PDF of the real ZIP."""
    text = "CRICOS data.gov.au extract - field definitions (see the Purpose Statement of the XLSX snapshots)"
    stream = "BT /F1 10 Tf 40 800 Td (%s) Tj ET" % text
    objs = ["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
            "/Resources << /Font << /F1 5 0 R >> >> >>",
            "<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += ("%d 0 obj\n%s\nendobj\n" % (i, o)).encode("latin-1")
    xref = len(out)
    out += ("xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)).encode()
    for off in offsets:
        out += ("%010d 00000 n \n" % off).encode()
    out += ("trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)).encode()
    return out


def zip_bytes(reg, versions, when):
    """The bulk ZIP: the four CSVs under their resource names plus the field-definition PDF. Deterministic for a
    given set of table versions, so its hash only changes when a member does."""
    import zipfile
    buf = io.BytesIO()
    stamp = (when.year, when.month, when.day, when.hour, when.minute, when.second // 2 * 2)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for t in TABLES:
            info = zipfile.ZipInfo(RESOURCES[t]["name"], stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, reg.csv_bytes(t, versions[t]))
        info = zipfile.ZipInfo(ZIP_MEMBER_PDF, stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, field_definitions_pdf())
    return buf.getvalue()


# Columns that the XLSX snapshots store as numbers (measured in the 2023 XLSX); every other cell is a string.
XLSX_NUMERIC = {"institutions": {4}, "courses": {15, 16, 17, 19, 20, 21, 22}, "locations": set(),
                "course_locations": set()}
XLSX_SHEETS = [("institutions", "Institutions"), ("courses", "Courses"), ("locations", "Locations"),
               ("course_locations", "Course Locations")]


def _xml(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _col(i):
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def _xlsx_number(v):
    cents = parse_money(v) if v.startswith("$") else None
    if cents is not None:
        return ("%d" % (cents // 100)) if cents % 100 == 0 else ("%.2f" % (cents / 100)).rstrip("0")
    try:
        f = float(v.replace(",", ""))
    except ValueError:
        return None
    return ("%d" % f) if f == int(f) else repr(f)


def xlsx_bytes(reg, versions, date):
    """A dated snapshot in the layout of the real ones (reference §4): sheets Purpose Statement, Institutions,
    Courses, Locations, Course Locations; row 1 title, row 2 "Report generated <weekday>, D Month YYYY", row 3
    header, data from row 4; numeric columns as numbers (blank = cell without value); Institutions and Courses end
    with two empty rows. Strings are inline (the real files use shared strings; readers must accept both)."""
    import zipfile
    generated = "Report generated %s, %d %s %d" % (date.strftime("%A"), date.day, date.strftime("%B"), date.year)
    sheets = []
    purpose = ["Purpose Statement",
               "This report lists the institutions, courses and locations registered on CRICOS.",
               "Date generated: %s" % date.strftime("%d/%m/%Y"),
               "The authoritative version is https://cricos.education.gov.au/default.aspx"]
    rows_xml = ['<row r="%d"><c r="A%d" t="inlineStr"><is><t>%s</t></is></c></row>' % (i, i, _xml(t))
                for i, t in enumerate(purpose, 1)]
    sheets.append(("Purpose Statement", "".join(rows_xml)))
    for table, title in XLSX_SHEETS:
        ed = reg.edition(versions[table])
        numeric = XLSX_NUMERIC[table]
        parts = ['<row r="1"><c r="A1" t="inlineStr"><is><t>%s</t></is></c></row>' % title,
                 '<row r="2"><c r="A2" t="inlineStr"><is><t>%s</t></is></c></row>' % generated]
        header = [h.lstrip(BOM) for h in HEADERS[table]]
        cells = "".join('<c r="%s3" t="inlineStr"><is><t>%s</t></is></c>' % (_col(i), _xml(h))
                        for i, h in enumerate(header))
        parts.append('<row r="3">%s</row>' % cells)
        r = 3
        for row in ed.data[table]:
            r += 1
            out = []
            for i, v in enumerate(row):
                ref = "%s%d" % (_col(i), r)
                if i in numeric:
                    num = _xlsx_number(v) if v else None
                    if num is None and not v:
                        out.append('<c r="%s"/>' % ref)
                        continue
                    if num is not None:
                        out.append('<c r="%s"><v>%s</v></c>' % (ref, num))
                        continue
                out.append('<c r="%s" t="inlineStr"><is><t xml:space="preserve">%s</t></is></c>' % (ref, _xml(v)))
            parts.append('<row r="%d">%s</row>' % (r, "".join(out)))
        for _ in range(TRAILING_BLANK_ROWS[table]):
            r += 1
            parts.append('<row r="%d"/>' % r)
        sheets.append((title, "".join(parts)))
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rns = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    buf = io.BytesIO()
    stamp = (date.year, date.month, date.day, 0, 0, 0)

    def put(z, name, text):
        info = zipfile.ZipInfo(name, stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, text.encode("utf-8"))

    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        put(z, "[Content_Types].xml",
            '<?xml version="1.0" encoding="utf-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/'
            'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"'
            '/>' + "".join('<Override PartName="/xl/worksheets/sheet%d.xml" ContentType="application/vnd.'
                           'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' % i
                           for i in range(1, len(sheets) + 1)) + "</Types>")
        put(z, "_rels/.rels",
            '<?xml version="1.0" encoding="utf-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        put(z, "xl/workbook.xml",
            '<?xml version="1.0" encoding="utf-8"?><workbook %s %s><sheets>%s</sheets></workbook>' % (
                rns, ns, "".join('<sheet name="%s" sheetId="%d" r:id="rId%d"/>' % (_xml(n), i, i)
                                 for i, (n, _) in enumerate(sheets, 1))))
        put(z, "xl/_rels/workbook.xml.rels",
            '<?xml version="1.0" encoding="utf-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            '2006/relationships">%s</Relationships>' % "".join(
                '<Relationship Id="rId%d" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
                'worksheet" Target="worksheets/sheet%d.xml"/>' % (i, i) for i in range(1, len(sheets) + 1)))
        for i, (_, body) in enumerate(sheets, 1):
            put(z, "xl/worksheets/sheet%d.xml" % i,
                '<?xml version="1.0" encoding="utf-8"?><worksheet %s %s><sheetData>%s</sheetData></worksheet>' % (
                    ns, rns, body))
    return buf.getvalue()


def summary(scale="small", seed=1, editions=4):
    reg = Register(scale, seed)
    out = []
    for n in range(1, editions + 1):
        ed = reg.edition(n)
        out.append((n, ed.date.isoformat(), {t: (len(ed.rows(t)), ed.version[t], ed.meta[t]["size"])
                                             for t in TABLES}))
    return out


if __name__ == "__main__":
    import json
    import time

    scale = sys.argv[1] if len(sys.argv) > 1 else "small"
    t0 = time.time()
    for row in summary(scale, 1, int(sys.argv[2]) if len(sys.argv) > 2 else 4):
        print(json.dumps(row))
    print("built in %.2f s" % (time.time() - t0))
