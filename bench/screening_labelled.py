# Name lists necessarily hold letters that look like ASCII ones (Turkish dotless i).
# ruff: noqa: RUF001
"""A labelled evaluation set for sanctions screening, generated deterministically from a list.

Positives are listed names (primary names and aliases of individuals and organisations)
written the way a payment message might carry them:

* ``typo``: one keyboard slip in one name part (deletion, insertion, substitution or swap of
  neighbours, anywhere, the first letter included) in a part of at least five letters,
* ``transliteration``: a name part replaced by another common romanisation
  (Mohammed/Muhammad/Mohamad, Yusuf/Youssef, Hussein/Husayn, Sergei/Sergey, ...),
* ``reorder``: name parts in another order, without OFAC's "SURNAME, Given" comma,
* ``dropped``: a middle name or patronymic left out (individuals with three or more parts),
* ``suffix``: a company's legal form changed or dropped (LLC/Ltd/Limited/GmbH/...).

Each positive is labelled with the entity it came from; it is found when that entity is
among the hits at or above the review threshold.

Negatives are common names of people (given and family names of the same culture, across
many cultures) and plausible company names, none of them on the list: a candidate is
discarded when some listed name holds all of its parts up to spelling (a consonant-skeleton
key, so "Hasan" and "Hassan" count as the same part) - such a name is a genuine potential
match that screening should send to review, not a false positive. A negative is a false
positive when any entity hits at or above the review threshold.

    .venv/bin/python bench/screening_labelled.py [--per-kind 300] [--negatives 1500]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a plain script from anywhere
    sys.path.insert(0, str(ROOT))

from compliance.lists import EntityType, ListEntity, StaticWatchList, load_ofac  # noqa: E402
from compliance.matcher import Matcher, MatcherSettings  # noqa: E402
from compliance.names import name_tokens, reorder_surname_first, tokenize  # noqa: E402
from kernel.settings import BUNDLED_SANCTIONS  # noqa: E402

SANCTIONS = BUNDLED_SANCTIONS
SEED = 20240601

Kind = Literal["typo", "transliteration", "reorder", "dropped", "suffix", "negative"]
POSITIVE_KINDS: tuple[Kind, ...] = ("typo", "transliteration", "reorder", "dropped", "suffix")


@dataclass(frozen=True)
class LabelledQuery:
    """One query of the evaluation set."""

    query: str
    kind: Kind
    entity_id: str | None
    """The listed entity the query was derived from; None for a negative."""
    source: str
    """The listed name it was derived from (empty for negatives)."""
    individual: bool


# Romanisation variants: every spelling of a group stands for the same name.
TRANSLITERATIONS: tuple[tuple[str, ...], ...] = (
    ("mohammed", "muhammad", "mohamed", "mohammad", "muhammed", "mohamad", "mohamud"),
    ("ahmed", "ahmad", "ahmet"),
    ("mahmoud", "mahmud", "mahmood", "mehmood"),
    ("yusuf", "youssef", "yousef", "yousif", "yusif", "yousuf"),
    ("hussein", "husain", "hussain", "husayn", "hosein", "hossein"),
    ("hassan", "hasan", "hasson"),
    ("hasan", "hassan"),
    ("osama", "usama", "oussama"),
    ("omar", "umar", "omer"),
    ("khalid", "khaled", "chalid"),
    ("saeed", "said", "sayed", "saiid"),
    ("abdullah", "abdallah", "abdulla", "abdalla"),
    ("abdul", "abdel", "abdol"),
    ("abd", "abdel", "abdul"),
    ("mustafa", "mostafa", "moustafa", "mustapha"),
    ("ibrahim", "ebrahim", "ibraheem"),
    ("ismail", "ismael", "esmail"),
    ("qasim", "qassem", "kassem", "qasem", "kasim"),
    ("qadir", "kadir", "qader"),
    ("jamal", "gamal", "djamal"),
    ("yasser", "yasir", "yaser"),
    ("abu", "abou"),
    ("abdulrahman", "abdelrahman", "abdurrahman"),
    ("rahman", "rahmane", "rehman"),
    ("rahim", "raheem"),
    ("karim", "kareem", "kerim"),
    ("mansour", "mansur", "mansoor"),
    ("nasser", "nasir", "naser", "nassir"),
    ("salim", "saleem", "selim"),
    ("suleiman", "sulayman", "sulaiman", "suleyman"),
    ("faisal", "faysal", "feisal"),
    ("hamid", "hameed", "hamed"),
    ("rashid", "rasheed", "rachid"),
    ("tariq", "tarek", "tarik"),
    ("walid", "waleed", "oualid"),
    ("ayman", "aiman", "eyman"),
    ("jafar", "jaafar", "djafar"),
    ("zakaria", "zakariya", "zakariyya", "zacharia"),
    ("hezbollah", "hizballah", "hizbullah"),
    ("qaeda", "qaida", "kaida"),
    ("sergei", "sergey", "serguei", "sergiy"),
    ("aleksandr", "alexander", "aleksander", "oleksandr"),
    ("alexander", "aleksandr", "alexandre"),
    ("yuri", "yury", "iouri", "yuriy"),
    ("dmitry", "dmitri", "dmitriy"),
    ("vladimir", "wladimir", "volodymyr"),
    ("yevgeny", "evgeny", "evgeniy", "yevgeniy"),
    ("evgeny", "yevgeny", "evgeni"),
    ("alexey", "aleksei", "alexei", "aleksey"),
    ("nikolai", "nikolay", "mykola"),
    ("andrei", "andrey", "andriy"),
    ("mikhail", "michail", "mykhailo"),
    ("arkady", "arkadiy", "arkadi"),
    ("viktor", "victor", "wiktor"),
    ("grigory", "grigori", "hryhoriy"),
    ("pavel", "pavlo", "paul"),
    ("tatiana", "tatyana", "tetyana"),
    ("natalia", "natalya", "nataliya"),
    ("yulia", "yuliya", "julia"),
    ("kim", "gim"),
    ("jong", "chong"),
    ("kadyrov", "kadirov", "qadyrov"),
    ("rotenberg", "rottenberg"),
    ("jose", "josef", "joseph"),
)
_VARIANTS: dict[str, tuple[str, ...]] = {}
for _group in TRANSLITERATIONS:
    for _spelling in _group:
        _VARIANTS.setdefault(_spelling, ())
        _VARIANTS[_spelling] += tuple(v for v in _group if v != _spelling)

# Legal forms as written in payment messages, and which can replace which.
LEGAL_FORMS: tuple[str, ...] = (
    "LLC",
    "L.L.C.",
    "Ltd",
    "Ltd.",
    "Limited",
    "Co. Ltd",
    "Company Limited",
    "GmbH",
    "Inc.",
    "Corp.",
    "Corporation",
    "S.A.",
    "SA",
    "JSC",
    "OOO",
    "PLC",
    "B.V.",
    "S.A. de C.V.",
    "Company",
    "Co.",
)
_LEGAL_FORM_TAIL = re.compile(
    r"[\s,]+(?:LLC|L\.L\.C\.|LTD\.?|LIMITED|CO\.,? LTD\.?|COMPANY LIMITED|GMBH|INC\.?|CORP\.?|"
    r"CORPORATION|S\.A\.(?: DE C\.V\.)?|S\.A\.S\.|SA|JSC|OJSC|CJSC|PJSC|OOO|OAO|ZAO|PLC|B\.V\.|"
    r"COMPANY|CO\.?|LTDA\.?|SAL|S\.R\.L\.|SRL|FZE|FZCO)$",
    re.IGNORECASE,
)

# Common given and family names per culture; negatives pair names of the same culture.
CULTURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "english": (
        (
            "James",
            "Mary",
            "John",
            "Patricia",
            "Robert",
            "Jennifer",
            "Michael",
            "Linda",
            "William",
            "Elizabeth",
            "David",
            "Susan",
            "Richard",
            "Jessica",
            "Thomas",
            "Sarah",
            "Charles",
            "Karen",
            "Emily",
            "Daniel",
            "Olivia",
            "George",
            "Hannah",
            "Oliver",
        ),
        (
            "Smith",
            "Johnson",
            "Williams",
            "Brown",
            "Jones",
            "Miller",
            "Davis",
            "Wilson",
            "Anderson",
            "Taylor",
            "Thomas",
            "Moore",
            "Jackson",
            "Martin",
            "Thompson",
            "White",
            "Harris",
            "Clark",
            "Lewis",
            "Walker",
            "Wright",
            "Baker",
            "Turner",
            "Cooper",
        ),
    ),
    "german": (
        (
            "Lukas",
            "Anna",
            "Jonas",
            "Lea",
            "Felix",
            "Laura",
            "Maximilian",
            "Sophie",
            "Paul",
            "Katharina",
            "Tobias",
            "Julia",
            "Stefan",
            "Sabine",
            "Jürgen",
            "Ursula",
            "Matthias",
        ),
        (
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Meyer",
            "Wagner",
            "Becker",
            "Schulz",
            "Hoffmann",
            "Schäfer",
            "Koch",
            "Bauer",
            "Richter",
            "Klein",
            "Wolf",
            "Schröder",
            "Neumann",
            "Zimmermann",
            "Braun",
            "Krüger",
            "Hartmann",
            "Lange",
        ),
    ),
    "french": (
        (
            "Pierre",
            "Marie",
            "Jean",
            "Camille",
            "Louis",
            "Chloé",
            "Antoine",
            "Manon",
            "Hugo",
            "Léa",
            "Nicolas",
            "Juliette",
            "François",
            "Isabelle",
            "Mathieu",
            "Élodie",
        ),
        (
            "Martin",
            "Bernard",
            "Dubois",
            "Durand",
            "Lefebvre",
            "Moreau",
            "Laurent",
            "Simon",
            "Michel",
            "Garnier",
            "Fournier",
            "Girard",
            "Bonnet",
            "Dupont",
            "Lambert",
            "Fontaine",
            "Rousseau",
            "Vincent",
            "Muller",
            "Lefèvre",
            "Faure",
            "Mercier",
        ),
    ),
    "spanish": (
        (
            "José",
            "María",
            "Antonio",
            "Carmen",
            "Manuel",
            "Lucía",
            "Francisco",
            "Sofía",
            "Javier",
            "Marta",
            "Alejandro",
            "Elena",
            "Pablo",
            "Isabel",
            "Sergio",
            "Raquel",
        ),
        (
            "García",
            "Fernández",
            "González",
            "Rodríguez",
            "López",
            "Martínez",
            "Sánchez",
            "Pérez",
            "Gómez",
            "Martín",
            "Jiménez",
            "Ruiz",
            "Hernández",
            "Díaz",
            "Moreno",
            "Álvarez",
            "Romero",
            "Navarro",
            "Torres",
            "Domínguez",
            "Vázquez",
            "Ramos",
        ),
    ),
    "portuguese": (
        (
            "João",
            "Ana",
            "Pedro",
            "Beatriz",
            "Tiago",
            "Mariana",
            "Rafael",
            "Inês",
            "Lucas",
            "Gabriela",
            "Gustavo",
            "Larissa",
            "Rodrigo",
            "Fernanda",
        ),
        (
            "Silva",
            "Santos",
            "Ferreira",
            "Pereira",
            "Oliveira",
            "Costa",
            "Rodrigues",
            "Almeida",
            "Nascimento",
            "Lima",
            "Araújo",
            "Fernandes",
            "Carvalho",
            "Gomes",
            "Ribeiro",
            "Martins",
            "Rocha",
            "Sousa",
        ),
    ),
    "italian": (
        (
            "Giuseppe",
            "Giulia",
            "Marco",
            "Francesca",
            "Alessandro",
            "Chiara",
            "Luca",
            "Sara",
            "Matteo",
            "Valentina",
            "Lorenzo",
            "Alessia",
            "Davide",
            "Federica",
            "Simone",
        ),
        (
            "Rossi",
            "Russo",
            "Ferrari",
            "Esposito",
            "Bianchi",
            "Romano",
            "Colombo",
            "Ricci",
            "Marino",
            "Greco",
            "Bruno",
            "Gallo",
            "Conti",
            "De Luca",
            "Mancini",
            "Costa",
            "Giordano",
            "Rizzo",
            "Lombardi",
            "Moretti",
        ),
    ),
    "dutch_nordic": (
        (
            "Daan",
            "Sanne",
            "Bram",
            "Femke",
            "Lars",
            "Ingrid",
            "Erik",
            "Astrid",
            "Sven",
            "Freja",
            "Magnus",
            "Sigrid",
            "Henrik",
            "Maja",
            "Nils",
            "Karin",
        ),
        (
            "De Jong",
            "Jansen",
            "De Vries",
            "Van den Berg",
            "Bakker",
            "Visser",
            "Smit",
            "Meijer",
            "Andersson",
            "Johansson",
            "Karlsson",
            "Nilsson",
            "Eriksson",
            "Larsen",
            "Hansen",
            "Pedersen",
            "Lindqvist",
            "Virtanen",
            "Korhonen",
        ),
    ),
    "polish_czech": (
        (
            "Piotr",
            "Anna",
            "Krzysztof",
            "Katarzyna",
            "Tomasz",
            "Agnieszka",
            "Paweł",
            "Magdalena",
            "Jakub",
            "Zuzana",
            "Petr",
            "Lucie",
            "Jan",
            "Tereza",
        ),
        (
            "Nowak",
            "Kowalski",
            "Wiśniewski",
            "Wójcik",
            "Kowalczyk",
            "Kamiński",
            "Lewandowski",
            "Zieliński",
            "Szymański",
            "Dvořák",
            "Novotný",
            "Svoboda",
            "Černý",
            "Procházka",
        ),
    ),
    "russian_ukrainian": (
        (
            "Ivan",
            "Olga",
            "Artem",
            "Anastasia",
            "Maxim",
            "Ekaterina",
            "Kirill",
            "Daria",
            "Roman",
            "Svetlana",
            "Denis",
            "Irina",
            "Taras",
            "Oksana",
            "Bohdan",
            "Polina",
        ),
        (
            "Smirnov",
            "Kuznetsova",
            "Popov",
            "Sokolova",
            "Lebedev",
            "Novikova",
            "Morozov",
            "Volkova",
            "Solovyov",
            "Vasilyeva",
            "Zaitsev",
            "Pavlova",
            "Shevchenko",
            "Bondarenko",
            "Kovalenko",
            "Tkachenko",
            "Kravchenko",
            "Oliynyk",
            "Lysenko",
            "Rudenko",
        ),
    ),
    "greek_turkish": (
        (
            "Giorgos",
            "Maria",
            "Dimitris",
            "Eleni",
            "Nikos",
            "Katerina",
            "Mehmet",
            "Ayşe",
            "Mustafa",
            "Fatma",
            "Emre",
            "Zeynep",
            "Burak",
            "Elif",
            "Can",
            "Selin",
        ),
        (
            "Papadopoulos",
            "Nikolaidis",
            "Georgiou",
            "Pappas",
            "Yılmaz",
            "Kaya",
            "Demir",
            "Şahin",
            "Çelik",
            "Yıldız",
            "Yıldırım",
            "Öztürk",
            "Aydın",
            "Özdemir",
            "Arslan",
            "Doğan",
            "Kılıç",
            "Aslan",
            "Korkmaz",
            "Koç",
        ),
    ),
    "arabic": (
        (
            "Mohammed",
            "Fatima",
            "Ahmed",
            "Aisha",
            "Omar",
            "Layla",
            "Youssef",
            "Mariam",
            "Karim",
            "Nour",
            "Tariq",
            "Salma",
            "Hamza",
            "Yasmin",
            "Bilal",
            "Rania",
            "Samir",
            "Hana",
            "Adel",
            "Dina",
            "Nabil",
            "Leila",
            "Walid",
            "Amira",
        ),
        (
            "Haddad",
            "Khoury",
            "Nassar",
            "Saleh",
            "Mansour",
            "Aziz",
            "Hamdan",
            "Farouk",
            "Awad",
            "Khalil",
            "Shalabi",
            "Darwish",
            "Nasser",
            "Qureshi",
            "Barakat",
            "Sabbagh",
            "Tahan",
            "Zaki",
            "Ghanem",
            "Bitar",
            "Jaber",
            "Sarraf",
            "Hijazi",
            "Kanaan",
        ),
    ),
    "persian": (
        (
            "Reza",
            "Maryam",
            "Amir",
            "Zahra",
            "Mehdi",
            "Fatemeh",
            "Hossein",
            "Sara",
            "Ali",
            "Niloufar",
            "Babak",
            "Shirin",
            "Dariush",
            "Parisa",
            "Kaveh",
            "Roya",
        ),
        (
            "Hosseini",
            "Mohammadi",
            "Karimi",
            "Rezaei",
            "Moradi",
            "Jafari",
            "Sadeghi",
            "Rahimi",
            "Kazemi",
            "Ghorbani",
            "Mousavi",
            "Ebrahimi",
            "Hashemi",
            "Zamani",
            "Shirazi",
            "Tehrani",
            "Farahani",
            "Nazari",
        ),
    ),
    "south_asian": (
        (
            "Aarav",
            "Priya",
            "Rahul",
            "Ananya",
            "Vikram",
            "Divya",
            "Arjun",
            "Kavya",
            "Rohan",
            "Sneha",
            "Imran",
            "Ayesha",
            "Bilal",
            "Sana",
            "Farhan",
            "Zainab",
            "Sanjay",
            "Neha",
        ),
        (
            "Sharma",
            "Patel",
            "Singh",
            "Kumar",
            "Gupta",
            "Reddy",
            "Iyer",
            "Nair",
            "Mehta",
            "Joshi",
            "Chopra",
            "Malhotra",
            "Banerjee",
            "Chatterjee",
            "Siddiqui",
            "Chaudhry",
            "Butt",
            "Malik",
            "Sheikh",
            "Ansari",
        ),
    ),
    "east_asian": (
        (
            "Wei",
            "Fang",
            "Jun",
            "Li",
            "Hao",
            "Xiu",
            "Yuki",
            "Haruto",
            "Sakura",
            "Ren",
            "Minjun",
            "Seoyeon",
            "Jiho",
            "Hyun",
            "Thanh",
            "Linh",
            "Minh",
            "Lan",
        ),
        (
            "Wang",
            "Zhang",
            "Liu",
            "Chen",
            "Yang",
            "Huang",
            "Zhao",
            "Wu",
            "Zhou",
            "Xu",
            "Sato",
            "Suzuki",
            "Takahashi",
            "Tanaka",
            "Watanabe",
            "Park",
            "Choi",
            "Jung",
            "Nguyen",
            "Tran",
            "Pham",
            "Hoang",
        ),
    ),
    "african": (
        (
            "Chinedu",
            "Ngozi",
            "Oluwaseun",
            "Amina",
            "Kwame",
            "Abena",
            "Tendai",
            "Thandiwe",
            "Kofi",
            "Ama",
            "Sipho",
            "Nomvula",
            "Juma",
            "Wanjiru",
            "Emeka",
            "Folake",
        ),
        (
            "Okafor",
            "Adeyemi",
            "Okonkwo",
            "Balogun",
            "Mensah",
            "Asante",
            "Owusu",
            "Boateng",
            "Dlamini",
            "Nkosi",
            "Mokoena",
            "Kamau",
            "Otieno",
            "Mwangi",
            "Banda",
            "Phiri",
        ),
    ),
}

COMPANY_WORDS: tuple[str, ...] = (
    "Alpine",
    "Harbour",
    "Meadow",
    "Granite",
    "Silver",
    "Northwind",
    "Bluebell",
    "Orchard",
    "Copper",
    "Lakeside",
    "Summit",
    "Riverside",
    "Evergreen",
    "Maple",
    "Beacon",
    "Sunrise",
    "Pioneer",
    "Keystone",
    "Redwood",
    "Starlight",
    "Brightwater",
    "Oakridge",
    "Clearview",
    "Westfield",
    "Cedar",
    "Highland",
    "Seaside",
    "Golden Gate",
    "Blue Ocean",
    "Green Valley",
)
COMPANY_KINDS: tuple[str, ...] = (
    "Bakery",
    "Logistics",
    "Consulting",
    "Textiles",
    "Dental",
    "Software",
    "Garden",
    "Printing",
    "Furniture",
    "Dairy",
    "Pharmacy",
    "Engineering",
    "Catering",
    "Architects",
    "Solar",
    "Plumbing",
    "Bookshop",
    "Veterinary",
    "Translations",
    "Optics",
)
COMPANY_FORMS: tuple[str, ...] = (
    "GmbH",
    "Ltd",
    "LLC",
    "Inc.",
    "AG",
    "B.V.",
    "S.A.",
    "S.r.l.",
    "Oy",
    "AB",
    "Pty Ltd",
    "",
)

_VOWELS = frozenset("aeiouy")


def skeleton(token: str) -> str:
    """A spelling-tolerant key of a name part: first letter, then consonants without
    doubles ("hassan" and "hasan" -> "hsn", "mohammed" and "muhammad" -> "mhmd")."""
    if not token:
        return ""
    key = [token[0]]
    for ch in token[1:]:
        if ch in _VOWELS or (ch == "h" and key[-1] in "kcsgtd") or ch == key[-1]:
            continue
        key.append(ch)
    first = {"o": "a", "u": "a", "e": "a", "i": "a", "y": "a", "q": "k", "c": "k"}
    return first.get(key[0], key[0]) + "".join(key[1:])


class ListedParts:
    """Which listed names hold all parts of a candidate name, up to spelling."""

    def __init__(self, watch_list: StaticWatchList) -> None:
        """Key every listed name by the skeletons of its parts."""
        self._postings: dict[str, set[int]] = defaultdict(set)
        count = 0
        for entity in watch_list.entities:
            individual = entity.type is EntityType.INDIVIDUAL
            for name in entity.names:
                for token in name_tokens(name.name, individual=individual):
                    self._postings[skeleton(token)].add(count)
                count += 1

    def holds_all(self, name: str) -> bool:
        """True when one listed name holds every part of `name` (up to spelling)."""
        keys = {skeleton(t) for t in name_tokens(name)}
        if not keys:
            return True
        sets = sorted((self._postings.get(k, set()) for k in keys), key=len)
        common = set(sets[0])
        for other in sets[1:]:
            common &= other
            if not common:
                return False
        return bool(common)


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[\s,]+", name.strip()) if w]


def _typo(rng: random.Random, name: str) -> str | None:
    words = _words(reorder_surname_first(name))
    choices = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not choices:
        return None
    i = rng.choice(choices)
    word = words[i]
    k = rng.randrange(0, len(word) - 1)
    action = rng.choice(("delete", "insert", "substitute", "swap"))
    letter = rng.choice("aeioulnrstmkh")
    if action == "delete":
        word = word[:k] + word[k + 1 :]
    elif action == "insert":
        word = word[:k] + letter + word[k:]
    elif action == "substitute":
        word = word[:k] + (letter if letter != word[k].lower() else "x") + word[k + 1 :]
    else:
        word = word[:k] + word[k + 1] + word[k] + word[k + 2 :]
    words[i] = word
    return " ".join(words)


def _transliterate(rng: random.Random, name: str) -> str | None:
    words = _words(reorder_surname_first(name))
    spots = [
        (i, part)
        for i, word in enumerate(words)
        for part in tokenize(word)
        if part in _VARIANTS and len(tokenize(word)) == 1
    ]
    if not spots:
        return None
    i, part = rng.choice(spots)
    words[i] = rng.choice(_VARIANTS[part]).capitalize()
    return " ".join(words)


def _reorder(rng: random.Random, name: str) -> str | None:
    words = _words(name)
    if len(words) < 2:
        return None
    natural = _words(reorder_surname_first(name))
    for _ in range(6):
        rng.shuffle(words)
        if words != natural:
            return " ".join(words)
    return None


def _drop(rng: random.Random, name: str, individual: bool) -> str | None:
    if not individual or "," not in name:
        return None
    surname, _, given = name.partition(",")
    given_words = _words(given)
    if len(given_words) < 2:
        return None
    # keep the first given name and the surname; a middle name or patronymic goes
    k = rng.randrange(1, len(given_words))
    kept = given_words[:k] + given_words[k + 1 :]
    return " ".join([*kept, surname.strip()])


def _suffix(rng: random.Random, name: str, individual: bool) -> str | None:
    if individual:
        return None
    match = _LEGAL_FORM_TAIL.search(name)
    if match is None:
        return None
    stem = name[: match.start()].rstrip(" ,")
    if len(name_tokens(stem)) < 1:
        return None
    current = match.group(0).strip(" ,").upper()
    options = [f for f in LEGAL_FORMS if f.upper() != current] + [""]
    form = rng.choice(options)
    return f"{stem} {form}".strip()


def _positive(
    rng: random.Random, kind: Kind, entity: ListEntity, name: str
) -> LabelledQuery | None:
    individual = entity.type is EntityType.INDIVIDUAL
    makers: dict[Kind, Callable[[], str | None]] = {
        "typo": lambda: _typo(rng, name),
        "transliteration": lambda: _transliterate(rng, name),
        "reorder": lambda: _reorder(rng, name),
        "dropped": lambda: _drop(rng, name, individual),
        "suffix": lambda: _suffix(rng, name, individual),
    }
    query = makers[kind]()
    if not query or not name_tokens(query):
        return None
    return LabelledQuery(query, kind, entity.id, name, individual)


def positives(watch_list: StaticWatchList, per_kind: int, seed: int = SEED) -> list[LabelledQuery]:
    """`per_kind` positives of each kind, derived from individuals' and organisations' names."""
    rng = random.Random(seed)
    entities = [
        e for e in watch_list.entities if e.type in {EntityType.INDIVIDUAL, EntityType.ENTITY}
    ]
    pool = [(e, n.name) for e in entities for n in e.names]
    found: list[LabelledQuery] = []
    for kind in POSITIVE_KINDS:
        order = list(pool)
        rng.shuffle(order)
        made = 0
        seen: set[str] = set()
        for entity, name in order:
            if made == per_kind:
                break
            if entity.id in seen:  # one query per entity and kind
                continue
            labelled = _positive(rng, kind, entity, name)
            if labelled is not None:
                seen.add(entity.id)
                found.append(labelled)
                made += 1
    return found


def negatives(watch_list: StaticWatchList, count: int, seed: int = SEED) -> list[LabelledQuery]:
    """`count` common names of people (about 80%) and companies, checked not to be listed."""
    rng = random.Random(seed + 1)
    listed = ListedParts(watch_list)
    cultures = sorted(CULTURES)
    found: list[LabelledQuery] = []
    seen: set[str] = set()
    attempts = 0
    while len(found) < count and attempts < count * 50:
        attempts += 1
        if rng.random() < 0.8:
            given, family = CULTURES[rng.choice(cultures)]
            parts = [rng.choice(given)]
            if rng.random() < 0.25:  # a middle name
                parts.append(rng.choice(given))
            parts.append(rng.choice(family))
            name, individual = " ".join(parts), True
        else:
            words = [
                rng.choice(COMPANY_WORDS),
                rng.choice(COMPANY_KINDS),
                rng.choice(COMPANY_FORMS),
            ]
            name, individual = " ".join(w for w in words if w), False
        key = " ".join(sorted(name_tokens(name)))
        if key in seen or listed.holds_all(name):
            continue
        seen.add(key)
        found.append(LabelledQuery(name, "negative", None, "", individual))
    return found


def labelled_set(
    watch_list: StaticWatchList, *, per_kind: int = 300, negative_count: int = 1500
) -> list[LabelledQuery]:
    """The whole evaluation set: positives of every kind, then negatives."""
    return positives(watch_list, per_kind) + negatives(watch_list, negative_count)


@dataclass(frozen=True)
class Evaluation:
    """Recall per kind and false-positive rate of one matcher on the labelled set."""

    recall: dict[str, float]
    overall_recall: float
    false_positive_rate: float
    found: list[bool]
    """Per labelled query: hit (the right entity for positives, anything for negatives)."""


def evaluate(
    queries: Sequence[LabelledQuery], hits_for: Callable[[LabelledQuery], Iterable[str]]
) -> Evaluation:
    """Score a matcher given as `hits_for(query) -> entity ids at or above its threshold`."""
    found: list[bool] = []
    for q in queries:
        ids = set(hits_for(q))
        found.append(q.entity_id in ids if q.entity_id is not None else bool(ids))
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for q, f in zip(queries, found, strict=True):
        by_kind[q.kind].append(f)
    positive = [f for q, f in zip(queries, found, strict=True) if q.kind != "negative"]
    negative = by_kind.get("negative", [])
    return Evaluation(
        recall={k: sum(v) / len(v) for k, v in by_kind.items() if k != "negative"},
        overall_recall=sum(positive) / len(positive) if positive else 0.0,
        false_positive_rate=sum(negative) / len(negative) if negative else 0.0,
        found=found,
    )


def matcher_hits(matcher: Matcher) -> Callable[[LabelledQuery], list[str]]:
    """Our matcher as `evaluate` wants it: entity ids at or above the review threshold (the
    name only, as a payment carries it: no party type, country or birth year)."""
    threshold = matcher.settings.review_threshold

    def hits(q: LabelledQuery) -> list[str]:
        return [h.entity_id for h in matcher.screen(q.query, limit=50) if h.score >= threshold]

    return hits


def print_evaluation(label: str, result: Evaluation) -> None:
    """One line per kind, then overall recall and false-positive rate."""
    kinds = "  ".join(f"{k} {v:.3f}" for k, v in result.recall.items())
    print(
        f"{label:<22} recall {result.overall_recall:.3f}  FP {result.false_positive_rate:.3f}"
        f"  ({kinds})"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Generate the set, screen it, print recall and false-positive rate (and misses)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--per-kind", type=int, default=300)
    parser.add_argument("--negatives", type=int, default=1500)
    parser.add_argument("--show", type=int, default=10, help="misses/false positives to print")
    args = parser.parse_args(argv)
    watch_list = load_ofac(SANCTIONS / "ofac-2021")
    queries = labelled_set(watch_list, per_kind=args.per_kind, negative_count=args.negatives)
    settings = MatcherSettings()
    matcher = Matcher([watch_list], settings)
    start = time.perf_counter()
    result = evaluate(queries, matcher_hits(matcher))
    elapsed = time.perf_counter() - start
    print(
        f"{len(queries)} labelled queries ({sum(q.kind != 'negative' for q in queries)} "
        f"positives) in {elapsed:.1f}s; review threshold {settings.review_threshold}"
    )
    print_evaluation("matcher", result)
    misses = [q for q, f in zip(queries, result.found, strict=True) if not f and q.entity_id]
    false = [q for q, f in zip(queries, result.found, strict=True) if f and not q.entity_id]
    for q in misses[: args.show]:
        best = matcher.screen(q.query, limit=50)
        score = next((h.score for h in best if h.entity_id == q.entity_id), None)
        print(f"  missed [{q.kind}] {q.query!r} <- {q.source!r} ({q.entity_id}): {score}")
    for q in false[: args.show]:
        hit = matcher.screen(q.query)[0]
        print(f"  false positive {q.query!r} -> {hit.matched_name!r} {hit.score}")


if __name__ == "__main__":
    main()
