"""Translation pairs for the sequence-to-sequence recipes: generated dates by default, Spanish-English
on request.

    from datasets.translation import date_pairs, load_spa_eng
    train = date_pairs(20_000, seed=0)                  # [("Thu, 3 May 1979", "1979-05-03"), ...]
    held = date_pairs(1_000, seed=1, exclude=train)     # dates that never occur in `train`
    pairs = load_spa_eng()                              # [("Ve.", "Go."), ...] (downloaded once)

The date task (no network): a date between 1 January 1950 and 31 December 2049 written one of many
ways people write dates ("3 May 1979", "May 3, 1979", "thursday, may 3, 1979", "03.05.79",
"5/3/1979", "the 3rd of May 1979", "19790503", ...) is to be rewritten as its ISO 8601 form
"1979-05-03". Every format is unambiguous: a slash means month/day/year (US), a dot day.month.year
(European), a two-digit year yy means 19yy for yy >= 50 and 20yy below. Month and weekday names are
English, in their written case, lower case or upper case. The characters to copy and reorder make
attention alignments easy to read.

"spa-eng" is the Spanish-English sentence pairs of the Tatoeba project as published by manythings.org
(anki) and mirrored by TensorFlow's tutorials: `spa-eng.zip` (2,638,744 bytes) holding
`spa-eng/spa.txt`, one "English<TAB>Spanish" pair per line. It comes from
storage.googleapis.com/download.tensorflow.org/data/ or from the mirror named by the environment variable
RECIPES_DATA_ORIGIN, goes through `keras.utils.get_file` into the Keras cache, and is checked against
its size (no sha256 is published for it; `SPA_ENG_SHA256` is checked when set). Any failure is a
`DatasetUnavailable` whose one line names the embedded alternative, `--dataset dates`.
"""

import datetime
import io
import os
import zipfile

import numpy as np

from datasets import remote
from datasets.remote import DatasetUnavailable, _short

FIRST_DATE, LAST_DATE = datetime.date(1950, 1, 1), datetime.date(2049, 12, 31)
MONTHS = (
    "January February March April May June July August September October November December"
).split()
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()

SPA_ENG_ORIGIN = "http://storage.googleapis.com/download.tensorflow.org/data/"
SPA_ENG_FILE = "spa-eng.zip"
SPA_ENG_MEMBER = "spa-eng/spa.txt"
SPA_ENG_SIZE = 2_638_744  # what the TensorFlow tutorials' download progress reports
SPA_ENG_SHA256 = None  # not published; set it (e.g. for a mirror) to have the download checked
FALLBACK = "Use the embedded date task instead: --dataset dates"


def _ordinal(day):
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


# Each format writes a datetime.date; d/m = day/month without a leading zero, dd/mm with one.
DATE_FORMATS = (
    lambda t: f"{t.day} {MONTHS[t.month - 1]} {t.year}",  # 3 May 1979
    lambda t: f"{t.day:02d} {MONTHS[t.month - 1][:3]} {t.year}",  # 03 May 1979
    lambda t: f"{MONTHS[t.month - 1]} {t.day}, {t.year}",  # May 3, 1979
    lambda t: f"{MONTHS[t.month - 1][:3]} {t.day:02d} {t.year}",  # May 03 1979
    lambda t: f"{WEEKDAYS[t.weekday()][:3]}, {MONTHS[t.month - 1][:3]} {t.day}, {t.year}",
    lambda t: f"{WEEKDAYS[t.weekday()][:3]} {t.day} {MONTHS[t.month - 1][:3]} {t.year}",
    lambda t: f"{_ordinal(t.day)} of {MONTHS[t.month - 1]} {t.year}",  # 3rd of May 1979
    lambda t: f"{_ordinal(t.day)} {MONTHS[t.month - 1][:3]} {t.year % 100:02d}",  # 3rd May 79
    lambda t: f"{t.day}.{t.month}.{t.year}",  # 3.5.1979
    lambda t: f"{t.day:02d}.{t.month:02d}.{t.year % 100:02d}",  # 03.05.79
    lambda t: f"{t.month}/{t.day}/{t.year}",  # 5/3/1979
    lambda t: f"{t.month:02d}/{t.day:02d}/{t.year % 100:02d}",  # 05/03/79
    lambda t: f"{t.year}/{t.month:02d}/{t.day:02d}",  # 1979/05/03
    lambda t: f"{t.year}{t.month:02d}{t.day:02d}",  # 19790503
    lambda t: f"{t.day} {MONTHS[t.month - 1][:3]}, {t.year % 100:02d}",  # 3 May, 79
)


def write_date(date, style, case):
    """`date` in format number `style` (index of DATE_FORMATS), case 0 as written, 1 lower, 2 upper."""
    text = DATE_FORMATS[style](date)
    return (text, text.lower(), text.upper())[case]


def date_pairs(count, seed=0, exclude=()):
    """`count` (human-written date, ISO date) pairs drawn with `seed`, distinct dates.

    Dates, formats and cases are drawn uniformly; `exclude` (pairs or ISO strings) lists dates that
    must not occur, so a held-out set drawn with `exclude=train` tests dates never seen in training.
    """
    rng = np.random.default_rng(seed)
    excluded = {x[1] if isinstance(x, tuple) else x for x in exclude}
    span = (LAST_DATE - FIRST_DATE).days + 1
    if count > span - len(excluded):
        raise ValueError(f"date_pairs: only {span - len(excluded)} distinct dates are left")
    pairs, seen = [], set(excluded)
    while len(pairs) < count:
        date = FIRST_DATE + datetime.timedelta(days=int(rng.integers(span)))
        iso = date.isoformat()
        style, case = int(rng.integers(len(DATE_FORMATS))), int(rng.choice(3, p=(0.6, 0.2, 0.2)))
        if iso in seen:
            continue
        seen.add(iso)
        pairs.append((write_date(date, style, case), iso))
    return pairs


def load_spa_eng():
    """The Spanish-English pairs as (spanish, english) tuples, in the file's order."""
    path = remote.fetch(
        "spa-eng",
        SPA_ENG_FILE,
        default_origin=SPA_ENG_ORIGIN,
        file_hash=SPA_ENG_SHA256,
        fallback=FALLBACK,
    )
    try:
        size = os.path.getsize(path)
        if SPA_ENG_SHA256 is None and size != SPA_ENG_SIZE:
            raise ValueError(f"{size:,} bytes instead of {SPA_ENG_SIZE:,}; delete it to download again")
        with zipfile.ZipFile(path) as archive:
            text = io.TextIOWrapper(archive.open(SPA_ENG_MEMBER), encoding="utf-8").read()
        pairs = []
        for line in text.splitlines():
            if line.strip():
                english, spanish = line.split("\t")[:2]
                pairs.append((spanish, english))
    except Exception as e:
        raise DatasetUnavailable(
            f"could not read spa-eng from {path}: {_short(e)}. {FALLBACK}"
        ) from None
    if not pairs:
        raise DatasetUnavailable(f"could not read spa-eng from {path}: no pairs. {FALLBACK}")
    return pairs
