"""The built-in demo corpus: synthetic financial and general documents.

BloombergGPT mixed FinPile (filings, news, press releases) with public text
(Wikipedia-like articles, web prose). The demo reproduces that two-domain
shape without downloading or copying any real data: every document is drawn
from templates by a seeded random generator, so a seed gives byte-identical
files on every machine.

The templates carry real structure for a small model to learn: a company's
name, ticker and sector are reused through its documents; revenue grows by
the stated percentage; gross profit is revenue minus cost of revenue and
segment figures add up to the total; a stock's new price is its previous
close moved by the stated change; a person's age at death follows from the
dates; an orbital period follows from Kepler's third law. Names are built from
syllables and sentences from varied word lists, so the corpus has thousands
of distinct entities and is not trivially memorised.

Every document has its own generator seeded by (domain, seed, index), so the
first n documents do not depend on how many are drawn.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bloomberg_style.atomic import atomic_write_text

FINANCIAL = "financial"
GENERAL = "general"
DOMAINS = (FINANCIAL, GENERAL)

# About 1.9 MB of financial and 1.1 MB of general text with these defaults, in well under a second.
DEFAULT_DOCS_PER_DOMAIN = 1200
DEFAULT_DOCS_PER_FILE = 400

MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve"]  # fmt: skip

# ---------------------------------------------------------------------------
# Names: syllables give thousands of pronounceable, invented proper nouns.

_ONSETS = ["b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z"] * 3 + [
    "br", "ch", "dr", "gr", "pr", "sh", "st", "tr", "qu", "bl", "cl", "fl", "sl", "th"]  # fmt: skip
_VOWELS = ["a", "e", "i", "o", "u"] * 3 + ["ai", "ea", "io", "ou", "ar", "er", "or", "y"]
_CODAS = [""] * 20 + ["n", "r", "l", "s", "th", "x", "m", "nd", "rk", "st", "ll", "nt", "ck", "v"]

FIRST_NAMES = {
    "she": ["Anna", "Clara", "Elena", "Grace", "Helena", "Iris", "Julia", "Laura", "Maya", "Nora", "Olivia",
            "Priya", "Rosa", "Sofia", "Tara", "Vera", "Alice", "Beatrice", "Carmen", "Diana", "Eva", "Freya",
            "Hannah", "Ingrid", "Leila", "Marta", "Naomi", "Paula", "Ruth", "Sara", "Yara", "Zoe"],
    "he": ["Adam", "Boris", "Carlos", "Daniel", "Erik", "Felix", "Gabriel", "Hugo", "Ivan", "Jonas", "Karl",
           "Leo", "Marco", "Nikolai", "Oscar", "Pablo", "Rafael", "Samuel", "Thomas", "Victor", "Anton",
           "Bruno", "Elias", "Henrik", "Isaac", "Lucas", "Matteo", "Omar", "Peter", "Simon", "Tomas", "Yusuf"],
}  # fmt: skip
PRONOUNS = {
    "she": {"subj": "she", "obj": "her", "poss": "her", "Subj": "She", "Poss": "Her"},
    "he": {"subj": "he", "obj": "him", "poss": "his", "Subj": "He", "Poss": "His"},
}


def proper_noun(rng: random.Random, syllables: tuple[int, int] = (2, 3)) -> str:
    """An invented name such as 'Brantel' or 'Korivan'."""
    name = ""
    for i in range(rng.randint(*syllables)):
        needs_onset = i == 0 or name[-1] in "aeiouy"
        onset = rng.choice(_ONSETS) if needs_onset or rng.random() < 0.5 else ""
        coda = rng.choice(_CODAS) if i < 2 else ""
        name += onset + rng.choice(_VOWELS) + coda
    return name.capitalize()


def article(word: str) -> str:
    """'a' or 'an' for the word that follows."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def surname(rng: random.Random) -> str:
    return proper_noun(rng, (1, 2)) + rng.choice(
        ["", "", "son", "er", "ley", "ton", "berg", "wood", "ford", "ini"]
    )


@dataclass(frozen=True)
class Person:
    first: str
    last: str
    pronoun: str  # "she" or "he"

    @property
    def full(self) -> str:
        return f"{self.first} {self.last}"

    def p(self, form: str) -> str:
        return PRONOUNS[self.pronoun][form]


def person(rng: random.Random) -> Person:
    pronoun = rng.choice(["she", "he"])
    return Person(rng.choice(FIRST_NAMES[pronoun]), surname(rng), pronoun)


def random_date(rng: random.Random, first_year: int, last_year: int) -> dt.date:
    start = dt.date(first_year, 1, 1).toordinal()
    end = dt.date(last_year, 12, 31).toordinal()
    return dt.date.fromordinal(rng.randint(start, end))


def fmt_date(day: dt.date) -> str:
    return f"{MONTHS[day.month - 1]} {day.day}, {day.year}"


def money(millions: float) -> str:
    """$1,234.5 million or $12.3 billion."""
    if abs(millions) >= 10_000:
        return f"${millions / 1000:,.1f} billion"
    return f"${millions:,.1f} million"


def pct_change(new: float, old: float) -> float:
    return (new / old - 1.0) * 100.0


def signed(x: float, digits: int = 1) -> str:
    return f"{x:+.{digits}f}"


def ordinal_suffix(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def join_list(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


# ---------------------------------------------------------------------------
# Financial domain


@dataclass(frozen=True)
class Sector:
    name: str
    description: str
    name_words: tuple[str, ...]
    segments: tuple[str, ...]
    products: tuple[str, ...]
    drivers: tuple[str, ...]
    headwinds: tuple[str, ...]
    gross_margin: tuple[float, float]
    rd_share: tuple[float, float]  # research and development as a share of revenue


SECTORS = [
    Sector("semiconductors", "semiconductor company", ("Micro", "Semiconductor", "Silicon", "Devices"),
           ("Data Center", "Automotive", "Industrial", "Consumer Electronics", "Networking"),
           ("processors", "memory chips", "power management chips", "image sensors", "network controllers"),
           ("strong demand for {product} from cloud customers", "new design wins with automotive customers",
            "higher average selling prices", "the ramp of its next-generation {product}"),
           ("inventory corrections at customers", "weaker demand for consumer devices",
            "higher wafer costs", "export restrictions"), (0.45, 0.65), (0.12, 0.22)),
    Sector("software", "enterprise software company", ("Soft", "Systems", "Cloud", "Data", "Logic"),
           ("Subscription", "Professional Services", "Maintenance", "Licenses"),
           ("analytics platforms", "security software", "database services", "collaboration tools"),
           ("growth in subscription revenue", "the expansion of existing customer contracts",
            "strong renewals among large enterprises", "demand for its {product}"),
           ("longer sales cycles", "lower license sales", "currency headwinds", "higher hosting costs"),
           (0.68, 0.85), (0.15, 0.28)),
    Sector("banking", "bank holding company", ("Bancorp", "Financial", "Trust", "Bank"),
           ("Consumer Banking", "Commercial Banking", "Wealth Management", "Markets"),
           ("mortgages", "commercial loans", "credit cards", "deposit accounts"),
           ("higher net interest income", "loan growth of the commercial portfolio",
            "higher fees from wealth management", "strong trading revenue"),
           ("higher provisions for credit losses", "deposit outflows", "lower mortgage volumes",
            "compression of the net interest margin"), (0.55, 0.75), (0.0, 0.0)),
    Sector("retail", "specialty retailer", ("Stores", "Retail", "Outfitters", "Market"),
           ("Stores", "Online", "Wholesale", "International"),
           ("apparel", "home furnishings", "footwear", "sporting goods"),
           ("higher comparable store sales", "growth in online orders", "the opening of new stores",
            "strong demand for {product}"),
           ("higher freight costs", "promotional pricing", "weaker store traffic", "higher wage costs"),
           (0.30, 0.45), (0.0, 0.0)),
    Sector("energy", "integrated energy company", ("Energy", "Petroleum", "Resources", "Oil"),
           ("Upstream", "Downstream", "Chemicals", "Renewables"),
           ("crude oil", "natural gas", "refined products", "petrochemicals"),
           ("higher realized prices for {product}", "increased production volumes",
            "stronger refining margins", "the start-up of new wells"),
           ("lower commodity prices", "planned maintenance at refineries", "higher exploration expenses",
            "weaker chemical margins"), (0.20, 0.35), (0.0, 0.01)),
    Sector("pharmaceuticals", "biopharmaceutical company", ("Pharma", "Therapeutics", "Biosciences", "Health"),
           ("Oncology", "Immunology", "Vaccines", "Neuroscience", "Generics"),
           ("cancer therapies", "vaccines", "antibody treatments", "diabetes medicines"),
           ("strong sales of its {product}", "the launch of new {product}", "higher volumes in emerging markets",
            "approval of new indications"),
           ("generic competition", "lower prices in the United States", "higher clinical trial costs",
            "the expiry of a patent"), (0.65, 0.80), (0.15, 0.25)),
    Sector("industrials", "diversified industrial manufacturer", ("Industries", "Machinery", "Engineering", "Works"),
           ("Aerospace", "Building Technologies", "Power Systems", "Automation"),
           ("jet engine parts", "heating systems", "industrial robots", "turbines"),
           ("higher aftermarket sales", "pricing actions", "strong orders for {product}", "a record backlog"),
           ("supply chain disruptions", "higher raw material costs", "delays in deliveries", "restructuring charges"),
           (0.28, 0.40), (0.03, 0.06)),
    Sector("telecommunications", "telecommunications provider", ("Telecom", "Communications", "Networks", "Wireless"),
           ("Wireless", "Broadband", "Business Services", "Media"),
           ("mobile plans", "fiber internet", "data center connectivity", "streaming bundles"),
           ("growth in wireless subscribers", "higher broadband revenue", "price increases on {product}",
            "lower churn"), ("declines in legacy voice services", "higher network costs", "equipment subsidies",
            "competition in broadband"), (0.50, 0.62), (0.01, 0.02)),
    Sector("consumer goods", "consumer products company", ("Brands", "Foods", "Consumer", "Products"),
           ("Beverages", "Snacks", "Personal Care", "Household Products"),
           ("soft drinks", "packaged snacks", "shampoo", "cleaning products"),
           ("higher prices across categories", "volume growth in {product}", "a favorable product mix",
            "strong demand in emerging markets"),
           ("higher commodity costs", "lower volumes", "currency headwinds", "increased advertising"),
           (0.38, 0.55), (0.01, 0.03)),
    Sector("transportation", "transportation and logistics company", ("Logistics", "Freight", "Airways", "Transport"),
           ("Freight", "Passenger", "Logistics", "Parcel"),
           ("freight services", "parcel delivery", "air travel", "container shipping"),
           ("higher shipment volumes", "fuel surcharges", "strong demand for {product}", "higher yields"),
           ("higher fuel costs", "lower freight rates", "labor shortages", "weather disruptions"),
           (0.18, 0.30), (0.0, 0.0)),
]  # fmt: skip

COMPANY_SUFFIXES = ["Inc.", "Corp.", "Holdings", "Group", "Co.", "Ltd."]
EXCHANGES = ["NYSE", "Nasdaq"]
BROKERS = ["Halvard Securities", "Northbridge Capital", "Castellan Partners", "Oakmere Research", "Tessaly & Co.",
           "Brightwater Markets", "Kestrel Advisors", "Marlow Brothers"]  # fmt: skip
INDEX_NAMES = ["Meridian 500", "Continental Composite", "Atlas Industrial Average", "Harbor 100"]
QUARTERS = ["first", "second", "third", "fourth"]


@dataclass(frozen=True)
class Company:
    name: str
    short: str
    ticker: str
    exchange: str
    sector: Sector
    city: str
    ceo: Person
    cfo: Person
    founded: int
    employees: int


def company(rng: random.Random, sector: Sector | None = None) -> Company:
    sector = sector or rng.choice(SECTORS)
    short = proper_noun(rng, (2, 3))
    name = f"{short} {rng.choice(sector.name_words)} {rng.choice(COMPANY_SUFFIXES)}"
    letters = [c for c in short.upper()[1:] if c not in "AEIOU"] or list(short.upper()[1:])
    ticker = short[0].upper() + "".join(rng.sample(letters, min(len(letters), rng.randint(2, 3))))
    return Company(
        name=name,
        short=short,
        ticker=ticker,
        exchange=rng.choice(EXCHANGES),
        sector=sector,
        city=proper_noun(rng),
        ceo=person(rng),
        cfo=person(rng),
        founded=rng.randint(1890, 2012),
        employees=rng.randint(8, 900) * 100,
    )


@dataclass
class Statement:
    """One period's income statement, in millions, rounded as displayed so totals add up."""

    revenue: float
    cost: float
    rd: float
    sga: float
    interest: float
    tax_rate: float
    shares: float  # diluted, millions

    @property
    def gross(self) -> float:
        return round(self.revenue - self.cost, 1)

    @property
    def operating(self) -> float:
        return round(self.gross - self.rd - self.sga, 1)

    @property
    def pretax(self) -> float:
        return round(self.operating - self.interest, 1)

    @property
    def tax(self) -> float:
        return round(max(self.pretax, 0.0) * self.tax_rate, 1)

    @property
    def net(self) -> float:
        return round(self.pretax - self.tax, 1)

    @property
    def eps(self) -> float:
        return round(self.net / self.shares, 2)

    @property
    def gross_margin(self) -> float:
        return 100.0 * self.gross / self.revenue

    @property
    def operating_margin(self) -> float:
        return 100.0 * self.operating / self.revenue


def statement(
    rng: random.Random, sector: Sector, revenue: float, shares: float, like: Statement | None = None
) -> Statement:
    """An income statement; with `like`, cost ratios stay close to that earlier period's."""
    if like is None:
        gm = rng.uniform(*sector.gross_margin)
        rd_share = rng.uniform(*sector.rd_share)
        sga_share = rng.uniform(0.08, 0.22)
        interest_share = rng.uniform(0.0, 0.03)
        tax_rate = rng.choice([0.15, 0.18, 0.19, 0.21, 0.23, 0.25])
    else:
        gm = like.gross_margin / 100 + rng.uniform(-0.03, 0.03)
        rd_share = like.rd / like.revenue * rng.uniform(0.9, 1.1)
        sga_share = like.sga / like.revenue * rng.uniform(0.85, 1.1)
        interest_share = like.interest / like.revenue * rng.uniform(0.8, 1.2)
        tax_rate = rng.choice([like.tax_rate, like.tax_rate, 0.19, 0.21, 0.23])
    revenue = round(revenue, 1)
    return Statement(
        revenue=revenue,
        cost=round(revenue * (1 - gm), 1),
        rd=round(revenue * rd_share, 1),
        sga=round(revenue * sga_share, 1),
        interest=round(revenue * interest_share, 1),
        tax_rate=tax_rate,
        shares=round(shares, 1),
    )


def two_periods(rng: random.Random, co: Company) -> tuple[Statement, Statement, float]:
    """Last year's and this year's statements, and the revenue growth in percent."""
    revenue_before = math.exp(rng.uniform(math.log(80), math.log(40_000)))
    growth = rng.choice([rng.uniform(-0.15, 0.0), rng.uniform(0.0, 0.12), rng.uniform(0.05, 0.35)])
    shares = max(5.0, revenue_before / rng.uniform(3, 40))  # millions; EPS lands between cents and ~$15
    before = statement(rng, co.sector, revenue_before, shares)
    now = statement(
        rng, co.sector, before.revenue * (1 + growth), shares * rng.uniform(0.95, 1.02), like=before
    )
    return before, now, pct_change(now.revenue, before.revenue)


def split_total(total: float, weights: list[float]) -> list[float]:
    """Split `total` in proportion to `weights` into one-decimal figures that add up exactly."""
    tenths = round(total * 10)
    parts = [int(tenths * w / sum(weights)) for w in weights]
    parts[0] += tenths - sum(parts)
    return [p / 10 for p in parts]


def up_down(change: float, up: str = "up", down: str = "down") -> str:
    return up if change >= 0 else down


def earnings_release(rng: random.Random) -> str:
    co = company(rng)
    sec = co.sector
    before, now, growth = two_periods(rng, co)
    q = rng.randrange(4)
    year = rng.randint(2008, 2024)
    period_end = dt.date(year, 3 * q + 3, 30 if q in (1, 2) else 31)
    release = period_end + dt.timedelta(days=rng.randint(20, 45))
    segments = rng.sample(sec.segments, rng.randint(2, min(4, len(sec.segments))))
    mix = [rng.uniform(0.5, 3.0) for _ in segments]  # segment shares drift a little year on year
    seg_before = split_total(before.revenue, mix)
    seg_now = split_total(now.revenue, [w * rng.uniform(0.85, 1.15) for w in mix])
    product = rng.choice(sec.products)
    driver = rng.choice(sec.drivers).format(product=product)
    headwind = rng.choice(sec.headwinds)
    cash = round(now.revenue * rng.uniform(0.2, 1.5), 1)
    verb = rng.choice(["reported", "announced", "posted"])
    lines = [
        f"{co.name} Reports {QUARTERS[q].capitalize()} Quarter {year} Results",
        "",
        f"{co.city.upper()}, {fmt_date(release)} -- {co.name} ({co.exchange}: {co.ticker}), {article(sec.description)} {sec.description}, "
        f"today {verb} financial results for the {QUARTERS[q]} quarter of fiscal {year}, which ended on "
        f"{fmt_date(period_end)}.",
        "",
        f"{QUARTERS[q].capitalize()} Quarter {year} Highlights",
        f"- Revenue of {money(now.revenue)}, {up_down(growth)} {abs(growth):.1f}% from {money(before.revenue)} "
        f"in the {QUARTERS[q]} quarter of fiscal {year - 1}.",
        f"- Gross margin of {now.gross_margin:.1f}%, compared with {before.gross_margin:.1f}% a year ago.",
        f"- Operating income of {money(now.operating)}, an operating margin of {now.operating_margin:.1f}%.",
        f"- Net income of {money(now.net)}, or ${now.eps:.2f} per diluted share, compared with "
        f"{money(before.net)}, or ${before.eps:.2f} per diluted share, a year ago.",
        f"- Cash and cash equivalents of {money(cash)} at the end of the quarter.",
        "",
    ]
    if growth >= 0:
        quote = (
            f'"Our {QUARTERS[q]} quarter results reflect {driver}," said {co.ceo.full}, Chief Executive '
            f'Officer of {co.short}. "Revenue grew {growth:.1f}% and we continued to invest in {product}."'
        )
    else:
        quote = (
            f'"Revenue declined {abs(growth):.1f}% as we faced {headwind}," said {co.ceo.full}, Chief '
            f'Executive Officer of {co.short}. "We are taking steps to reduce costs and remain focused '
            f'on {product}."'
        )
    lines += [quote, ""]
    lines += [
        "Revenue by Segment (in millions)",
        f"| Segment | Q{q + 1} {year} | Q{q + 1} {year - 1} | Change |",
        "|---|---|---|---|",
    ]
    for name, a, b in zip(segments, seg_now, seg_before):
        lines.append(f"| {name} | ${a:,.1f} | ${b:,.1f} | {signed(pct_change(a, b))}% |")
    lines.append(f"| Total | ${now.revenue:,.1f} | ${before.revenue:,.1f} | {signed(growth)}% |")
    lines.append("")
    best = max(range(len(segments)), key=lambda i: pct_change(seg_now[i], seg_before[i]))
    lines.append(
        f"{segments[best]} revenue was {money(seg_now[best])}, {up_down(seg_now[best] - seg_before[best])} "
        f"{abs(pct_change(seg_now[best], seg_before[best])):.1f}% from a year ago, the "
        f"{'strongest' if len(segments) > 1 else 'only'} result among the company's segments."
    )
    lines.append("")
    guide_mid = now.revenue * (1 + rng.uniform(-0.05, 0.10))
    low, high = (
        round(guide_mid * 0.98, -1 if guide_mid > 500 else 0),
        round(guide_mid * 1.02, -1 if guide_mid > 500 else 0),
    )
    eps_low = round(now.eps * rng.uniform(0.9, 1.0), 2)
    eps_high = round(eps_low + rng.choice([0.04, 0.05, 0.06, 0.08, 0.10]), 2)
    call_hour = rng.choice([8, 9, 10, 4, 5])
    mid_change = pct_change((low + high) / 2, now.revenue)
    nq = (q + 1) % 4
    nyear = year + (q == 3)
    lines += [
        "Outlook",
        f"For the {QUARTERS[nq]} quarter of fiscal {nyear}, {co.short} expects revenue between {money(low)} and "
        f"{money(high)} and diluted earnings per share between ${eps_low:.2f} and ${eps_high:.2f}. The midpoint "
        f"of the revenue range implies {'growth' if mid_change >= 0 else 'a decline'} of {abs(mid_change):.1f}% "
        f"from the {QUARTERS[q]} quarter.",
        "",
        "Conference Call",
        f"{co.short} will host a conference call today at {call_hour}:"
        f"{rng.choice(['00', '30'])} {'a.m.' if call_hour >= 8 else 'p.m.'} Eastern Time to discuss the results. {co.cfo.full}, Chief Financial "
        f"Officer, will join {co.ceo.full} on the call.",
        "",
        f"About {co.name}",
        f"{co.name} is {article(sec.description)} {sec.description} headquartered in {co.city}. Founded in {co.founded}, the company "
        f"makes {join_list(rng.sample(sec.products, 2))} and employs about {co.employees:,} people.",
    ]
    return "\n".join(lines)


def annual_report_section(rng: random.Random) -> str:
    co = company(rng)
    sec = co.sector
    before, now, growth = two_periods(rng, co)
    year = rng.randint(2008, 2024)
    rows = [
        ("Net revenue", now.revenue, before.revenue),
        ("Cost of revenue", now.cost, before.cost),
        ("Gross profit", now.gross, before.gross),
    ]
    if now.rd > 0:
        rows.append(("Research and development", now.rd, before.rd))
    rows += [
        ("Selling, general and administrative", now.sga, before.sga),
        ("Operating income", now.operating, before.operating),
        ("Interest expense, net", now.interest, before.interest),
        ("Income before income taxes", now.pretax, before.pretax),
        ("Provision for income taxes", now.tax, before.tax),
        ("Net income", now.net, before.net),
    ]
    width = max(len(r[0]) for r in rows) + 2
    table = [f"{'':<{width}}{'Fiscal ' + str(year):>14}{'Fiscal ' + str(year - 1):>14}{'% Change':>11}"]
    for label, a, b in rows:
        change = f"{pct_change(a, b):.1f}%" if b > 0 and a > 0 else "n/m"
        table.append(f"{label:<{width}}{a:>14,.1f}{b:>14,.1f}{change:>11}")
    table.append(f"{'Diluted earnings per share':<{width}}{'$' + format(now.eps, '.2f'):>14}"
                 f"{'$' + format(before.eps, '.2f'):>14}{pct_change(now.eps, before.eps) if before.eps > 0 and now.eps > 0 else 0:>10.1f}%")  # fmt: skip
    diff = round(now.revenue - before.revenue, 1)
    driver = rng.choice(sec.drivers).format(product=rng.choice(sec.products))
    headwind = rng.choice(sec.headwinds)
    buyback_shares = round(now.shares * rng.uniform(0.005, 0.03), 2)
    price = round(rng.uniform(15, 400), 2)
    buyback = round(buyback_shares * price, 1)
    debt = round(now.revenue * rng.uniform(0.1, 1.2), -1)
    shock = rng.randint(5, 20)
    paragraphs = [
        "ITEM 7. MANAGEMENT'S DISCUSSION AND ANALYSIS OF FINANCIAL CONDITION AND RESULTS OF OPERATIONS",
        "Overview",
        f'{co.name} ("{co.short}," the "Company," "we" or "us") is {article(sec.description)} {sec.description} headquartered in '
        f"{co.city}. We operate through {NUMBER_WORDS[len(sec.segments)]} reportable segments: "
        f"{join_list(list(sec.segments))}. Our principal products are {join_list(list(sec.products[:3]))}.",
        "Results of Operations",
        "The following table sets forth selected consolidated statement of operations data for the fiscal years "
        "indicated (in millions, except per share amounts):",
        "\n".join(table),
        f"Net revenue {'increased' if diff >= 0 else 'decreased'} {money(abs(diff))}, or {abs(growth):.1f}%, "
        f"to {money(now.revenue)} in fiscal {year}, "
        + (f"primarily due to {driver}, partially offset by {headwind}." if diff >= 0
           else f"primarily due to {headwind}, partially offset by {driver}.")
        + f" Gross margin was {now.gross_margin:.1f}% compared with {before.gross_margin:.1f}% in fiscal "
        f"{year - 1}.",
        f"Operating income was {money(now.operating)}, or {now.operating_margin:.1f}% of net revenue, compared with "
        f"{money(before.operating)}, or {before.operating_margin:.1f}% of net revenue, in the prior year. Our "
        f"effective tax rate was {now.tax_rate * 100:.1f}% in fiscal {year} and {before.tax_rate * 100:.1f}% in "
        f"fiscal {year - 1}.",
        "Liquidity and Capital Resources",
        f"As of the end of fiscal {year}, we had total debt of {money(debt)}. During the year we repurchased "
        f"{buyback_shares:,.2f} million shares of common stock at an average price of ${price:,.2f} per share, for "
        f"a total of {money(buyback)}. We believe that cash from operations and our credit facility will be "
        f"sufficient to meet our needs for at least the next twelve months.",
        "Risk Factors",
        f"Our results could be harmed by {headwind}, by changes in demand for {rng.choice(sec.products)}, and by "
        f"economic conditions in the markets we serve. For example, a decline of {shock}% in demand "
        f"would have reduced our fiscal {year} net revenue by approximately {money(now.revenue * shock / 100)}.",
    ]  # fmt: skip
    return "\n\n".join(paragraphs)


def market_news(rng: random.Random) -> str:
    co = company(rng)
    sec = co.sector
    day = random_date(rng, 2006, 2024)
    while day.weekday() > 4:
        day += dt.timedelta(days=1)
    prev_day = day - dt.timedelta(days=3 if day.weekday() == 0 else 1)
    close_before = round(math.exp(rng.uniform(math.log(8), math.log(600))), 2)
    move = rng.choice([rng.uniform(-14, -2), rng.uniform(2, 18), rng.uniform(-3, 3)])
    close_now = round(close_before * (1 + move / 100), 2)
    move = pct_change(close_now, close_before)
    rose = move >= 0
    verb = (
        rng.choice(["rose", "climbed", "jumped", "gained"])
        if rose
        else rng.choice(["fell", "dropped", "slid", "declined"])
    )
    events_up = [f"reported {QUARTERS[rng.randrange(4)]}-quarter earnings that beat analysts' estimates",
                 f"raised its full-year revenue forecast on {rng.choice(sec.drivers).format(product=rng.choice(sec.products))}",
                 f"announced a ${rng.randint(1, 20) * 250:,} million share buyback program",
                 f"won a large contract for {rng.choice(sec.products)}"]  # fmt: skip
    events_down = [f"cut its full-year outlook, citing {rng.choice(sec.headwinds)}",
                   f"reported {QUARTERS[rng.randrange(4)]}-quarter revenue below analysts' estimates",
                   f"disclosed an investigation into its sales of {rng.choice(sec.products)}",
                   f"said its Chief Financial Officer, {co.cfo.full}, would step down"]  # fmt: skip
    event = rng.choice(events_up if rose else events_down)
    volume = round(rng.uniform(1, 60), 1)
    average = round(volume / rng.uniform(1.5, 4.0), 1)
    broker = rng.choice(BROKERS)
    analyst = person(rng)
    target_before = round(close_before * rng.uniform(0.9, 1.3))
    target_now = round(target_before * (1 + rng.uniform(0.05, 0.25) * (1 if rose else -1)))
    ytd = rng.uniform(-30, 45)
    index = rng.choice(INDEX_NAMES)
    index_ytd = rng.uniform(-12, 20)
    peer = company(rng, sec)
    peer_before = round(rng.uniform(10, 300), 2)
    peer_now = round(peer_before * (1 + (move / 100) * rng.uniform(0.2, 0.6)), 2)
    title = f"{co.ticker} Shares {'Jump' if rose else 'Slide'} After {co.short} {'Beats' if rose else 'Disappoints'}"
    paragraphs = [
        title,
        f"{WEEKDAYS[day.weekday()]}, {fmt_date(day)}",
        f"Shares of {co.name} ({co.exchange}: {co.ticker}) {verb} {abs(move):.1f}% to ${close_now:,.2f} in "
        f"{rng.choice(['morning', 'afternoon', 'late'])} trading on {WEEKDAYS[day.weekday()]} after the "
        f"{sec.description} {event}. The stock had closed at ${close_before:,.2f} on {WEEKDAYS[prev_day.weekday()]}, "
        f"so the move {'added' if rose else 'erased'} ${abs(close_now - close_before):,.2f} a share.",
        f"About {volume} million shares changed hands, compared with a 30-day average of {average} million. "
        f"{broker} analyst {analyst.full} {'raised' if rose else 'lowered'} {analyst.p('poss')} price target on "
        f"the stock to ${target_now} from ${target_before}, a change of {pct_change(target_now, target_before):+.1f}%.",
        f"Before {WEEKDAYS[day.weekday()]}'s move, {co.ticker} was {up_down(ytd)} {abs(ytd):.1f}% this year, "
        f"compared with a {abs(index_ytd):.1f}% {'gain' if index_ytd >= 0 else 'loss'} for the {index} index.",
        f"Elsewhere in the {sec.name} sector, {peer.name} ({peer.ticker}) {'gained' if peer_now >= peer_before else 'lost'} "
        f"{abs(pct_change(peer_now, peer_before)):.1f}% to ${peer_now:,.2f}.",
    ]  # fmt: skip
    return "\n\n".join(paragraphs)


def market_wrap(rng: random.Random) -> str:
    day = random_date(rng, 2006, 2024)
    while day.weekday() > 4:
        day += dt.timedelta(days=1)
    index = rng.choice(INDEX_NAMES)
    level_before = round(rng.uniform(900, 6000), 2)
    index_move = rng.uniform(-2.5, 2.5)
    level_now = round(level_before * (1 + index_move / 100), 2)
    rows = []
    for _ in range(rng.randint(5, 8)):
        co = company(rng)
        p0 = round(math.exp(rng.uniform(math.log(5), math.log(500))), 2)
        p1 = round(p0 * (1 + (index_move + rng.gauss(0, 2.5)) / 100), 2)
        rows.append((co, p0, p1))
    rows.sort(key=lambda r: pct_change(r[2], r[1]), reverse=True)
    best, worst = rows[0], rows[-1]
    points = round(level_now - level_before, 2)
    mood = rng.choice(
        ["rate expectations", "inflation data", "a rally in bonds", "oil prices", "earnings reports"]
    )
    table = ["| Ticker | Company | Close | Change | % Change |", "|---|---|---|---|---|"]
    for co, p0, p1 in rows:
        table.append(
            f"| {co.ticker} | {co.name} | {p1:,.2f} | {p1 - p0:+,.2f} | {pct_change(p1, p0):+.2f}% |"
        )
    paragraphs = [
        f"Market Wrap: {index} {'Advances' if points >= 0 else 'Retreats'} on {WEEKDAYS[day.weekday()]}",
        f"The {index} index {'rose' if points >= 0 else 'fell'} {abs(points):,.2f} points, or "
        f"{abs(pct_change(level_now, level_before)):.2f}%, to close at {level_now:,.2f} on {fmt_date(day)}, as "
        f"investors weighed {mood}.",
        "\n".join(table),
        f"{best[0].name} {'led the gainers' if best[2] > best[1] else 'held up best'} with a "
        f"{pct_change(best[2], best[1]):+.2f}% move to ${best[2]:,.2f}, while {worst[0].name} was the weakest, closing at ${worst[2]:,.2f}, "
        f"{'down' if worst[2] < worst[1] else 'up'} {abs(pct_change(worst[2], worst[1])):.2f}% from ${worst[1]:,.2f}.",
        f"Of the {len(rows)} stocks in the table, {sum(p1 > p0 for _, p0, p1 in rows)} advanced and "
        f"{sum(p1 <= p0 for _, p0, p1 in rows)} declined or were unchanged.",
    ]  # fmt: skip
    return "\n\n".join(paragraphs)


def deal_or_dividend(rng: random.Random) -> str:
    buyer = company(rng)
    day = random_date(rng, 2006, 2024)
    if rng.random() < 0.5:
        target = company(rng, buyer.sector)
        close = round(rng.uniform(8, 250), 2)
        premium = rng.uniform(12, 65)
        offer = round(close * (1 + premium / 100), 2)
        premium = pct_change(offer, close)
        shares = round(rng.uniform(20, 900), 1)
        equity = round(offer * shares, 1)  # $ millions
        cash_share = rng.choice([100, 100, 60, 50, 70])
        synergies = round(equity * rng.uniform(0.02, 0.08), -1)
        paragraphs = [
            f"{buyer.short} to Acquire {target.short} for {money(equity)}",
            f"{buyer.city.upper()}, {fmt_date(day)} -- {buyer.name} ({buyer.ticker}) agreed to acquire {target.name} "
            f"({target.ticker}) for ${offer:,.2f} per share, valuing the {buyer.sector.description} at about "
            f"{money(equity)}. The offer is a {premium:.1f}% premium to {target.short}'s closing price of "
            f"${close:,.2f} on the last trading day before the announcement.",
            ("The deal will be paid entirely in cash." if cash_share == 100 else
             f"Shareholders of {target.short} will receive {cash_share}% of the consideration in cash and "
             f"{100 - cash_share}% in {buyer.short} stock."),
            f"{target.short} has about {shares:,.1f} million shares outstanding. {buyer.ceo.full}, who leads "
            f"{buyer.short}, said the combination would create annual cost savings of {money(synergies)} by the "
            f"{ORDINALS[rng.randint(1, 3)]} year after closing. The transaction is expected to close in the "
            f"{rng.choice(['first', 'second'])} half of {day.year + 1}, subject to regulatory approval.",
        ]  # fmt: skip
    else:
        old = round(rng.uniform(0.05, 1.5), 2)
        raise_pct = rng.choice([0.0, rng.uniform(2, 15)])
        new = round(old * (1 + raise_pct / 100), 2)
        price = round(rng.uniform(15, 300), 2)
        record = day + dt.timedelta(days=rng.randint(10, 25))
        payable = record + dt.timedelta(days=rng.randint(10, 20))
        annual = round(new * 4, 2)
        paragraphs = [
            f"{buyer.name} Declares Quarterly Dividend",
            f"{buyer.city.upper()}, {fmt_date(day)} -- The board of directors of {buyer.name} ({buyer.exchange}: "
            f"{buyer.ticker}) declared a quarterly cash dividend of ${new:.2f} per share, "
            + (f"an increase of {pct_change(new, old):.1f}% from the previous dividend of ${old:.2f}."
               if new > old else "unchanged from the previous quarter.")
            + f" The dividend is payable on {fmt_date(payable)} to shareholders of record at the close of business "
            f"on {fmt_date(record)}.",
            f"On an annual basis the dividend amounts to ${annual:.2f} per share, a yield of "
            f"{100 * annual / price:.2f}% based on the closing price of ${price:,.2f}. {buyer.short} has paid a "
            f"dividend for {rng.randint(3, 60)} consecutive years.",
        ]  # fmt: skip
    return "\n\n".join(paragraphs)


FINANCIAL_TEMPLATES: list[tuple[Callable[[random.Random], str], float]] = [
    (earnings_release, 0.3),
    (annual_report_section, 0.25),
    (market_news, 0.2),
    (market_wrap, 0.1),
    (deal_or_dividend, 0.15),
]

# ---------------------------------------------------------------------------
# General domain

COUNTRIES_ADJ = ["northern", "southern", "eastern", "western", "central", "north-eastern", "south-western"]
INDUSTRIES = ["textile manufacturing", "fishing", "tourism", "wine making", "shipbuilding", "mining", "forestry",
              "printing", "brewing", "education", "software development", "glass making", "dairy farming",
              "railway engineering", "ceramics", "publishing", "food processing", "trade"]  # fmt: skip
CLIMATES = [("oceanic", (1, 7), (15, 20), (700, 1200)), ("continental", (-9, -2), (18, 24), (450, 750)),
            ("Mediterranean", (7, 12), (23, 28), (350, 650)), ("subarctic", (-20, -10), (12, 16), (300, 550)),
            ("humid subtropical", (3, 10), (25, 29), (1000, 1600)), ("semi-arid", (2, 9), (24, 31), (200, 400))]  # fmt: skip
LANDMARKS = ["cathedral", "old town hall", "stone bridge", "botanical garden", "castle", "market square",
             "lighthouse", "observatory", "university library", "opera house", "harbour", "city museum"]  # fmt: skip
FOUNDINGS = ["a trading post", "a fortress", "a fishing village", "a monastery settlement", "a river crossing",
             "a market town", "a mining camp"]  # fmt: skip


def city_article(rng: random.Random) -> str:
    city = proper_noun(rng)
    country = proper_noun(rng, (2, 3)) + rng.choice(["ia", "land", "a", "istan", ""])
    river = proper_noun(rng, (1, 2))
    capital = proper_noun(rng)
    founded = rng.randint(800, 1750)
    rights = founded + rng.randint(20, 250)
    climate, jan, jul, rain = rng.choice(CLIMATES)
    t_jan = round(rng.uniform(*jan), 1)
    t_jul = round(rng.uniform(*jul), 1)
    precipitation = rng.randint(*rain)
    elevation = rng.randint(2, 900)
    industries = rng.sample(INDUSTRIES, 3)
    landmarks = rng.sample(LANDMARKS, 2)
    censuses = sorted(rng.sample(range(1950, 2021, 10), 4))
    pop = rng.randint(8_000, 400_000)
    populations = [pop]
    for _ in censuses[1:]:
        populations.append(round(populations[-1] * (1 + rng.uniform(-0.06, 0.18))))
    distance = rng.randint(15, 600)
    direction = rng.choice(
        ["north", "south", "east", "west", "north-east", "south-east", "north-west", "south-west"]
    )
    kind = "city" if populations[-1] > 50_000 else "town"
    change = pct_change(populations[-1], populations[0])
    mayor = person(rng)
    paragraphs = [
        city,
        f"{city} is a {kind} in the {rng.choice(COUNTRIES_ADJ)} part of {country}, on the "
        f"{rng.choice(['left', 'right'])} bank of the {river} River. It lies {distance} km {direction} of "
        f"{capital}, the capital of {country}, at an elevation of {elevation} metres above sea level. With "
        f"{populations[-1]:,} inhabitants at the {censuses[-1]} census, it is the {ORDINALS[rng.randrange(10)]} "
        f"largest {kind} in the country.",
        "History",
        f"{city} was founded in {founded} as {rng.choice(FOUNDINGS)} and received town rights in {rights}, "
        f"{rights - founded} years later. Its position on the {river} made it a centre of "
        f"{industries[0]}, and by the {ordinal_suffix(rights // 100 + 1)} century the {kind} was known for its "
        f"{landmarks[0]}. The {landmarks[1]} was completed in {rights + rng.randint(10, 200)}.",
        "Geography and climate",
        f"{city} has a {climate} climate. The average temperature is {t_jan} °C in January and {t_jul} °C in July, "
        f"a difference of {t_jul - t_jan:.1f} degrees, and the annual precipitation is about {precipitation} mm.",
        "Demographics",
        "| Year | Population |\n|---|---|\n"
        + "\n".join(f"| {y} | {p:,} |" for y, p in zip(censuses, populations)),
        f"Between {censuses[0]} and {censuses[-1]} the population {'grew' if change >= 0 else 'fell'} by "
        f"{abs(change):.1f}%, from {populations[0]:,} to {populations[-1]:,}.",
        "Economy",
        f"Today the economy of {city} rests on {join_list(industries)}. The current mayor, {mayor.full}, was "
        f"elected in {rng.randint(2005, 2023)}; {mayor.p('subj')} previously worked in {rng.choice(INDUSTRIES)}.",
    ]  # fmt: skip
    return "\n\n".join(paragraphs)


ANIMALS = [("frog", "amphibian", "Ranidae"), ("salamander", "amphibian", "Salamandridae"),
           ("warbler", "bird", "Parulidae"), ("owl", "bird", "Strigidae"), ("heron", "bird", "Ardeidae"),
           ("finch", "bird", "Fringillidae"), ("shrew", "mammal", "Soricidae"), ("bat", "mammal", "Vespertilionidae"),
           ("marten", "mammal", "Mustelidae"), ("deer", "mammal", "Cervidae"), ("squirrel", "mammal", "Sciuridae"),
           ("lizard", "reptile", "Lacertidae"), ("gecko", "reptile", "Gekkonidae"), ("turtle", "reptile", "Emydidae"),
           ("trout", "fish", "Salmonidae"), ("catfish", "fish", "Ictaluridae"), ("beetle", "insect", "Carabidae"),
           ("butterfly", "insect", "Nymphalidae"), ("dragonfly", "insect", "Libellulidae")]  # fmt: skip
COLORS = ["red", "golden", "grey", "spotted", "striped", "pale", "black-throated", "blue", "olive", "crested"]
HABITATS = ["mountain forests", "coastal wetlands", "dry grasslands", "river valleys", "rainforests",
            "alpine meadows", "mangrove swamps", "rocky deserts", "peat bogs"]  # fmt: skip
FOODS = {"amphibian": ["insects", "worms", "spiders", "snails"], "bird": ["seeds", "insects", "berries", "small fish"],
         "mammal": ["fruit", "insects", "grasses", "nuts", "small rodents"], "reptile": ["insects", "snails", "leaves"],
         "fish": ["insect larvae", "small fish", "crustaceans"], "insect": ["nectar", "leaves", "smaller insects"]}  # fmt: skip
SIZES = {"amphibian": (4, 15, 0.01, 0.3), "bird": (9, 60, 0.01, 2.0), "mammal": (6, 180, 0.005, 120.0),
         "reptile": (6, 45, 0.005, 4.0), "fish": (8, 90, 0.05, 15.0), "insect": (1, 9, 0.0002, 0.005)}  # fmt: skip
STATUSES = ["least concern", "near threatened", "vulnerable", "endangered", "critically endangered"]


def species_article(rng: random.Random) -> str:
    animal, group, family = rng.choice(ANIMALS)
    region = proper_noun(rng)
    color = rng.choice(COLORS)
    common = f"{region} {color} {animal}"
    genus = proper_noun(rng, (2, 3)) + rng.choice(["us", "a", "is", "ops"])
    epithet = region.lower() + rng.choice(["ensis", "ica", "ii"])
    min_len, max_len, min_w, max_w = SIZES[group]
    length = sorted(round(rng.uniform(min_len, max_len), 1) for _ in range(2))
    weight = sorted(round(rng.uniform(min_w, max_w), 3 if max_w < 1 else 1) for _ in range(2))
    unit = "kg" if max_w >= 1 else "g"
    shown = [w if unit == "kg" else round(w * 1000, 1) for w in weight]
    habitat = rng.choice(HABITATS)
    foods = rng.sample(FOODS[group], 2)
    year_described = rng.randint(1760, 1990)
    describer = person(rng)
    survey = sorted(rng.sample(range(1975, 2023), 2))
    count0 = rng.randint(500, 90_000)
    count1 = round(count0 * (1 + rng.uniform(-0.7, 0.4)))
    trend = pct_change(count1, count0)
    status = STATUSES[min(4, max(0, int((-trend) / 15) + 1))] if trend < 0 else "least concern"
    lifespan = rng.randint(2, 25)
    paragraphs = [
        f"{common.title()}",
        f"The {common} ({genus} {epithet}) is a species of {group} in the family {family}. It lives in the "
        f"{habitat} of the {region} region and was first described by {describer.full} in {year_described}.",
        "Description",
        f"Adults measure {length[0]} to {length[1]} cm in length and weigh between {shown[0]} and {shown[1]} "
        f"{unit}. As its name suggests, the {common} is {color if 'throated' not in color else 'dark at the throat'}"
        f", which sets it apart from other members of the genus {genus}. Individuals live for up to "
        f"{lifespan} years in the wild.",
        "Behaviour and diet",
        f"The {animal} is most active at {rng.choice(['dawn', 'dusk', 'night', 'midday'])} and feeds mainly on "
        f"{foods[0]} and {foods[1]}. During the {rng.choice(['wet', 'dry', 'cold', 'warm'])} season it "
        f"{rng.choice(['moves to lower ground', 'gathers in small groups', 'becomes less active', 'defends a territory'])}.",
        "Conservation",
        f"Surveys counted about {count0:,} individuals in {survey[0]} and {count1:,} in {survey[1]}, "
        f"{'a decline' if trend < 0 else 'an increase'} of {abs(trend):.0f}% over {survey[1] - survey[0]} years. "
        f"The species is listed as {status}.",
    ]  # fmt: skip
    return "\n\n".join(paragraphs)


PROFESSIONS = [("painter", "painting", "the painting"), ("composer", "music", "the symphony"),
               ("chemist", "chemistry", "the discovery of"), ("architect", "architecture", "the design of"),
               ("novelist", "literature", "the novel"), ("mathematician", "mathematics", "the theorem on"),
               ("botanist", "botany", "the study of"), ("engineer", "engineering", "the construction of"),
               ("physician", "medicine", "research on"), ("astronomer", "astronomy", "observations of")]  # fmt: skip
TOPICS = {"painting": ["harbour scenes", "portraits of workers", "winter landscapes"],
          "music": ["string quartets", "choral works", "operas"],
          "chemistry": ["a new dye", "a method to purify salt", "catalysts"],
          "architecture": ["railway stations", "public baths", "concrete bridges"],
          "literature": ["historical novels", "short stories", "travel writing"],
          "mathematics": ["prime numbers", "curved surfaces", "probability"],
          "botany": ["alpine plants", "mosses", "grasses of the steppe"],
          "engineering": ["steam turbines", "canal locks", "suspension bridges"],
          "medicine": ["fevers", "the heart", "vaccination"],
          "astronomy": ["variable stars", "comets", "the planet's moons"]}  # fmt: skip


def biography(rng: random.Random) -> str:
    who = person(rng)
    profession, field_name, _ = rng.choice(PROFESSIONS)
    born = random_date(rng, 1780, 1950)
    died = born + dt.timedelta(days=rng.randint(35 * 365, 95 * 365))
    age = died.year - born.year - ((died.month, died.day) < (born.month, born.day))
    birthplace, study_city, work_city = proper_noun(rng), proper_noun(rng), proper_noun(rng)
    nationality = proper_noun(rng, (1, 2)) + rng.choice(["ian", "ese", "ish", "an"])
    topics = TOPICS[field_name]
    study_year = born.year + rng.randint(17, 22)
    works = sorted(rng.sample(range(study_year + 3, died.year), 3))
    topic = rng.choice(topics)
    spouse = person(rng)
    children = rng.randint(2, 7)
    s, o, ps = who.p("subj"), who.p("obj"), who.p("poss")
    paragraphs = [
        who.full,
        f"{who.full} ({fmt_date(born)} – {fmt_date(died)}) was {article(nationality)} {nationality} {profession} known for "
        f"{ps} work on {topic}.",
        "Early life",
        f"{who.last} was born in {birthplace}, the {ORDINALS[rng.randrange(children)]} of {children} children of "
        f"a {rng.choice(['teacher', 'farmer', 'merchant', 'doctor', 'carpenter', 'clerk'])}. At the age of "
        f"{study_year - born.year}, in {study_year}, {s} began to study {field_name} at the university in "
        f"{study_city}, where {s} was taught by {person(rng).full}.",
        "Career",
        f"In {works[0]} {who.last} moved to {work_city}, and {rng.choice(['three', 'four', 'five'])} years later "
        f"{s} published {ps} first major work on {topic}. "
        f"{who.p('Poss')} best known work, on {rng.choice(topics)}, followed in {works[1]}, when {s} was "
        f"{works[1] - born.year} years old. In {works[2]} {s} was elected to the academy of {work_city}.",
        "Personal life and death",
        f"{who.last} married {spouse.full} in {rng.randint(study_year + 2, works[1])}. {who.p('Subj')} died in "
        f"{rng.choice([work_city, birthplace])} on {fmt_date(died)} at the age of {age}. A street in {birthplace} "
        f"is named after {o}.",
    ]  # fmt: skip
    return "\n\n".join(paragraphs)


def planet_article(rng: random.Random) -> str:
    star = proper_noun(rng)
    letter = "bcdefg"[rng.randrange(6)]
    name = f"{star} {letter}"
    star_mass = round(rng.uniform(0.4, 1.8), 2)  # solar masses
    a = round(math.exp(rng.uniform(math.log(0.03), math.log(8.0))), 3)  # AU
    period_years = math.sqrt(a**3 / star_mass)  # Kepler's third law in solar units
    period_days = period_years * 365.25
    radius = round(rng.uniform(0.5, 12.0), 2)  # Earth radii
    kind = "rocky planet" if radius < 1.8 else "mini-Neptune" if radius < 4 else "gas giant"
    density = (
        rng.uniform(4.0, 6.0)
        if radius < 1.8
        else rng.uniform(1.0, 2.5)
        if radius < 4
        else rng.uniform(0.4, 1.5)
    )
    mass = round(density / 5.51 * radius**3, 2)  # Earth masses, from density relative to Earth's
    gravity = mass / radius**2  # in units of Earth's surface gravity
    year = rng.randint(1995, 2024)
    method = rng.choice(["transit", "radial velocity", "direct imaging", "gravitational microlensing"])
    distance = rng.randint(12, 3000)
    temp = round(278 * (star_mass**1.75) ** 0.25 / math.sqrt(a))  # equilibrium temperature, L ~ M^3.5
    team = person(rng)
    paragraphs = [
        name,
        f"{name} is a {kind} orbiting the star {star}, about {distance:,} light-years from the Sun. It was "
        f"discovered in {year} by a team led by {team.full} using the {method} method.",
        "Orbit",
        f"The planet orbits at an average distance of {a} astronomical units. Because {star} has "
        f"{star_mass} times the mass of the Sun, one orbit takes {period_days:,.1f} days "
        f"({period_years:.2f} years), following Kepler's third law.",
        "Physical characteristics",
        f"{name} has a radius of {radius} times that of Earth and a mass of about {mass} Earth masses, giving a "
        f"surface gravity of {gravity:.2f} g. Its equilibrium temperature is estimated at {temp} K "
        f"({temp - 273} °C), {'too hot' if temp > 330 else 'too cold' if temp < 230 else 'within the range'} "
        f"for liquid water.",
    ]  # fmt: skip
    return "\n\n".join(paragraphs)


CATIONS = ["Ca", "Mg", "Fe", "Na", "K", "Al", "Cu", "Zn", "Mn", "Ba", "Sr", "Pb"]
ANIONS = ["SiO4", "CO3", "SO4", "PO4", "AsO4", "Si2O6", "(OH)2", "F2"]
CRYSTAL_SYSTEMS = ["cubic", "tetragonal", "orthorhombic", "hexagonal", "trigonal", "monoclinic", "triclinic"]
MINERAL_COLORS = [
    "green",
    "pale blue",
    "honey-yellow",
    "violet",
    "colourless",
    "reddish-brown",
    "black",
    "white",
]
ROCKS = ["granite pegmatites", "marble", "basalt cavities", "hydrothermal veins", "evaporite beds", "skarns",
         "oxidized zones of copper deposits"]  # fmt: skip


def mineral_article(rng: random.Random) -> str:
    honoree = person(rng)
    name = honoree.last.rstrip("aeiouy") + "ite"
    cation, second = rng.sample(CATIONS, 2)
    n1, n2 = rng.randint(1, 3), rng.randint(1, 2)
    anion = rng.choice(ANIONS)
    if n2 > 1:
        anion = f"{anion}{n2}" if anion.startswith("(") else f"({anion}){n2}"
    formula = f"{cation}{n1 if n1 > 1 else ''}{second}{anion}"
    year = rng.randint(1800, 2015)
    locality = proper_noun(rng)
    hardness = round(rng.uniform(1.5, 8.0) * 2) / 2
    gravity = round(rng.uniform(2.2, 6.5), 2)
    melt_c = rng.randint(600, 1900)
    color = rng.choice(MINERAL_COLORS)
    scratches = "glass" if hardness > 5.5 else "a copper coin" if hardness > 3.5 else "a fingernail"
    paragraphs = [
        name.capitalize(),
        f"{name.capitalize()} is {article(color)} {color} {rng.choice(CRYSTAL_SYSTEMS)} mineral with the chemical "
        f"formula {formula}. It was first described in {year} from specimens found near {locality} and is named "
        f"after {honoree.full}, who collected the first samples.",
        "Properties",
        f"{name.capitalize()} has a Mohs hardness of {hardness}, so it can scratch {scratches}, and a specific "
        f"gravity of {gravity}, meaning that a piece weighs {gravity} times as much as the same volume of water. "
        f"It melts at about {melt_c} °C ({melt_c + 273} K).",
        "Occurrence",
        f"The mineral occurs in {join_list(rng.sample(ROCKS, 2))}. The largest crystals, up to "
        f"{rng.randint(2, 40)} cm long, come from the type locality at {locality}.",
    ]  # fmt: skip
    return "\n\n".join(paragraphs)


WAR_CAUSES = ["a dispute over river tolls", "a contested succession", "control of the salt trade",
              "a border quarrel", "the seizure of merchant ships", "rival claims to a mountain pass"]  # fmt: skip


def history_article(rng: random.Random) -> str:
    city = proper_noun(rng)
    a = "Kingdom of " + proper_noun(rng)
    b = rng.choice(["Duchy of ", "Republic of ", "Empire of ", "League of "]) + proper_noun(rng)
    start = rng.randint(1100, 1880)
    years = rng.randint(2, 30)
    end = start + years
    signed_on = dt.date(end, rng.randint(1, 12), rng.randint(1, 28))
    war = proper_noun(rng, (1, 2))
    envoy_a, envoy_b = person(rng), person(rng)
    ceded = rng.randint(2, 40) * 100
    paragraphs = [
        f"Treaty of {city}",
        f"The Treaty of {city} was signed on {fmt_date(signed_on)} by envoys of the {a} and the {b}. It ended "
        f"the {war} War, which had begun in {start} over {rng.choice(WAR_CAUSES)} and lasted {years} "
        f"{'year' if years == 1 else 'years'}.",
        "Negotiations",
        f"Talks opened in {city} in the spring of {end}. The {a} was represented by {envoy_a.full}, and the {b} by "
        f"{envoy_b.full}. {envoy_a.last} insisted that {envoy_a.p('poss')} side keep the fortresses along the "
        f"border, while {envoy_b.last} demanded compensation for the losses of the war.",
        "Terms",
        f"Under the treaty the {b} ceded about {ceded:,} square kilometres of land and paid an indemnity over "
        f"{rng.randint(3, 12)} years. Trade on the {proper_noun(rng, (1, 2))} River was opened to merchants of "
        f"both sides.",
        "Legacy",
        f"The peace held for {rng.randint(8, 90)} years. Historians regard the treaty as "
        f"{rng.choice(['a turning point', 'a fragile compromise', 'the origin of the modern border', 'a model for later agreements'])} "
        f"in the history of the region.",
    ]  # fmt: skip
    return "\n\n".join(paragraphs)


OBJECTS = ["the old brass key", "the village bell", "a map of the hills", "the harvest ledger", "a silver compass",
           "the lantern from the mill", "a letter from the capital", "the winter seed store"]  # fmt: skip
PLACES = ["mill", "bakery", "harbour", "school", "library", "orchard", "workshop", "forge", "inn"]
LANDFORMS = ["a ridge", "a lake", "a forest", "a marsh", "a valley", "a cave", "an island"]
WEATHER = ["A cold wind blew from the north", "Rain had fallen all night", "The sun was already warm",
           "Fog lay over the fields", "Snow covered the road", "The air smelled of pine"]  # fmt: skip
COMPANION_ROLES = [
    "an old friend",
    "the baker's son",
    "a travelling merchant",
    "the schoolteacher",
    "a retired sailor",
]


def story(rng: random.Random) -> str:
    hero, friend = person(rng), person(rng)
    village = proper_noun(rng)
    place = rng.choice(PLACES)
    thing = rng.choice(OBJECTS)
    landform = rng.choice(LANDFORMS)
    landform_name = proper_noun(rng, (1, 2))
    years = rng.randint(3, 40)
    hours = rng.randint(2, 9)
    s, ps, o = hero.p("subj"), hero.p("poss"), hero.p("obj")
    middle = [
        f"They followed the path along the {rng.choice(['river', 'stream', 'old wall', 'railway'])} for {hours} hours.",
        f"At noon they stopped to eat bread and cheese, and {friend.first} told a story about {friend.p('poss')} grandfather.",
        f"{hero.first} counted the milestones: there were {rng.randint(4, 15)} of them before the crossroads.",
        f"The road grew steep, and {friend.first} had to stop twice to rest.",
        f"They crossed a wooden bridge that {friend.first} said was older than the village itself.",
        f"A cart loaded with {rng.choice(['hay', 'barrels', 'timber', 'apples'])} gave them a ride for part of the way.",
        f"In a small chapel by the road they found a candle still burning, which puzzled {hero.first}.",
        f"{friend.first} remembered a shortcut through the {rng.choice(['woods', 'fields', 'vineyards'])}, and it saved them an hour.",
    ]  # fmt: skip
    keep = sorted(rng.sample(range(len(middle)), 3))  # three of the middle events, in story order
    steps = [
        f"{rng.choice(WEATHER)} when they left {village}.",
        *(middle[i] for i in keep),
        f"Near {landform} called {landform_name} they met a shepherd who had seen a stranger pass that morning.",
    ]
    ending = rng.choice([
        f"They found {thing} in a hollow near {landform_name}, wrapped in cloth, exactly where the shepherd had "
        f"pointed. {hero.first} carried it home, and that night the whole of {village} came to the {place}.",
        f"They did not find {thing}, but they found the stranger, who had taken it by mistake. He returned it "
        f"with an apology, and {hero.first} invited him to stay at the {place} for the night.",
        f"By evening they understood that {thing} had never left {village}: it had fallen behind a shelf in the "
        f"{place}. {friend.first} laughed for a long time, and {hero.first} laughed with {friend.p('obj')}.",
    ])  # fmt: skip
    opening = rng.choice([
        f"{hero.first} had lived in {village} for {years} years and worked at the {place} every day except "
        f"Sunday. {hero.p('Subj')} knew every family in the village and most of their animals.",
        f"In the village of {village}, where {hero.first} had worked at the {place} for {years} years, nothing "
        f"much ever happened. {hero.p('Subj')} liked it that way.",
        f"Nobody in {village} knew the {place} better than {hero.first}, who had worked there for {years} years "
        f"and kept its keys in {ps} coat pocket.",
    ])  # fmt: skip
    paragraphs = [
        opening,
        f"One {rng.choice(['autumn', 'spring', 'winter', 'summer'])} morning {s} discovered that {thing} was "
        f"gone. {hero.p('Subj')} searched the {place} twice, then went to see {friend.full}, {rng.choice(COMPANION_ROLES)}.",
        f'"If it is not in the village, then someone took it to {landform_name}," said {friend.first}. '
        f'"I will come with you." {hero.first} thanked {friend.p("obj")}, and they set out before {ps} courage '
        f"could fade.",
        " ".join(steps),
        ending,
        f"Years later, when people in {village} spoke of that day, they said that {hero.first} had walked "
        f"{hours * rng.randint(3, 5)} kilometres for {thing}, and that {friend.first} had never let {o} walk alone.",
    ]  # fmt: skip
    return "\n\n".join(paragraphs)


GENERAL_TEMPLATES: list[tuple[Callable[[random.Random], str], float]] = [
    (city_article, 0.15),
    (species_article, 0.15),
    (biography, 0.2),
    (planet_article, 0.1),
    (mineral_article, 0.1),
    (history_article, 0.1),
    (story, 0.2),
]

# ---------------------------------------------------------------------------
# Generation and files


def _generate(domain: str, templates, n: int, seed: int) -> list[str]:
    if n < 0:
        raise ValueError(f"number of documents must be >= 0, got {n}")
    functions = [f for f, _ in templates]
    weights = [w for _, w in templates]
    docs = []
    for i in range(n):
        rng = random.Random(f"{domain}:{seed}:{i}")  # str seeds hash with SHA-512: stable across runs
        template = rng.choices(functions, weights)[0]
        docs.append(template(rng))
    return docs


def generate_financial_documents(n: int, seed: int = 1234) -> list[str]:
    """n financial documents: earnings releases, 10-K sections, market news, wraps, deals, dividends."""
    return _generate(FINANCIAL, FINANCIAL_TEMPLATES, n, seed)


def generate_general_documents(n: int, seed: int = 1234) -> list[str]:
    """n general documents: places, species, biographies, planets, treaties, short stories."""
    return _generate(GENERAL, GENERAL_TEMPLATES, n, seed)


GENERATORS = {FINANCIAL: generate_financial_documents, GENERAL: generate_general_documents}


def write_demo_corpus(
    out_dir: str | Path,
    seed: int = 1234,
    docs_per_domain: int = DEFAULT_DOCS_PER_DOMAIN,
    docs_per_file: int = DEFAULT_DOCS_PER_FILE,
) -> dict[str, list[Path]]:
    """Write out_dir/{financial,general}/part-NNNNN.jsonl (field "text"); return the files per domain.

    Files are written as UTF-8 with "\\n" line endings, so a seed gives
    byte-identical files on every platform.
    """
    if docs_per_domain < 1:
        raise ValueError(f"docs_per_domain must be >= 1, got {docs_per_domain}")
    if docs_per_file < 1:
        raise ValueError(f"docs_per_file must be >= 1, got {docs_per_file}")
    out_dir = Path(out_dir)
    written: dict[str, list[Path]] = {}
    for domain, generate in GENERATORS.items():
        folder = out_dir / domain
        folder.mkdir(parents=True, exist_ok=True)
        docs = generate(docs_per_domain, seed)
        written[domain] = []
        for part, start in enumerate(range(0, len(docs), docs_per_file)):
            path = folder / f"part-{part:05d}.jsonl"
            lines = (
                json.dumps({"text": text}, ensure_ascii=False) + "\n"
                for text in docs[start : start + docs_per_file]
            )
            atomic_write_text(path, "".join(lines))
            written[domain].append(path)
    return written


def corpus_summary(files: dict[str, list[Path]]) -> dict[str, dict[str, int]]:
    """Documents and bytes per domain of a written corpus (for logs and reports)."""
    summary = {}
    for domain, paths in files.items():
        docs = 0
        for path in paths:
            with open(path, encoding="utf-8") as f:
                docs += sum(1 for _ in f)
        summary[domain] = {
            "files": len(paths),
            "documents": docs,
            "bytes": sum(p.stat().st_size for p in paths),
        }
    return summary


if __name__ == "__main__":  # quick look: python -m bloomberg_style.demo.corpus
    t0 = time.perf_counter()
    fin = generate_financial_documents(DEFAULT_DOCS_PER_DOMAIN)
    gen = generate_general_documents(DEFAULT_DOCS_PER_DOMAIN)
    seconds = time.perf_counter() - t0
    size = sum(len(d.encode()) for d in fin + gen)
    print(fin[0], "\n\n-----\n\n", gen[0])
    print(f"\n{len(fin) + len(gen)} documents, {size / 1e6:.2f} MB in {seconds:.2f} s")
