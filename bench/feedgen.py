"""Synthetic news feeds for the benchmark: N feeds × M items, deterministic for a seed.

Most feeds are RSS 2.0, some Atom 1.0. Each feed has a main language (Sorani `ckb` in Arabic
script, Kurmanji `kmr` in Latin script, Arabic `ar`, English `en`) and a few items in another
one. Titles are 40–120 characters, summaries 200–600 characters of HTML (paragraphs, some
links and emphasis), so a 30-item feed is about 33 KB. About 2% of items mention a watchlist
term (Khanaqin, Diyala, suicide bomber) in the item's own language. A feed's revision r (for
the steady-state benchmark) has 3·r newer items at the top, each with its own random stream,
and the old items unchanged byte for byte.

Every word below was written for this file: it is vocabulary, not copied text.

    .venv/bin/python bench/feedgen.py --feeds 3 --items 30 --out /tmp/feeds   # look at some
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

__all__ = [
    "LANGUAGES",
    "WATCH_PHRASES",
    "GenFeed",
    "GenItem",
    "generate_feed",
    "generate_feeds",
]


def _vocab(text: str) -> tuple[str, ...]:
    return tuple(text.split())


WORDS: dict[str, tuple[str, ...]] = {
    "en": _vocab(
        """
        the of and in to a on for with said officials government minister city province police
        security forces killed wounded people region border report local council meeting water
        electricity prices market farmers election parliament budget oil exports schools
        students hospital health road bridge construction protest workers salaries villages
        refugees camp displaced families returned court trial journalists statement spokesman
        Monday Tuesday Sunday morning evening week year new after before during near against
        between northern southern eastern western central regional federal agreement talks
        delegation visit visited announced residents district checkpoint army arrested suspects
        investigation operation campaign drought rain harvest wheat river dam flooding airport
        flights trade crossing customs university teachers strike doctors football match team
        festival culture music heritage museum ancient site archaeologists project services
        reconstruction committee plan funding million thousand two three ten several many all
        most officials told reporters at the on by from was were has have will would could more
        than about over under since until while also still already again
        """
    ),
    "kmr": _vocab(
        """
        û li di de ji bi ku ev ew hat kirin got bajar bajarê herêm herêma hikûmet hikûmeta wezîr
        wezîrê parêzgeh parêzgeha polîs hêz hêzên ewlehî ewlehiyê gund gundê gundiyan navçe
        navçeya serok serokê civîn civînê aştî welat welatê xelk xelkê zarok zarokan dibistan
        dibistanê xwendekar nexweşxane nexweşxaneyê av avê elektrîk bihayê bazar bazarê cotkar
        cotkaran hilbijartin parleman budçe petrol rê rêya pira karker karkeran meaş koçber
        kampê malbat malbatên dadgeh rojnameger daxuyanî berdevk roja duşemê sêşemê îro duh sibê
        hefte sal nû piştî berî nêzî dijî navbera bakur başûr rojhilat rojava peyman danûstandin
        şande serdan ragihand niştecih xebat çand muzîk stran dîrok dîrokî çiya çem baran genim
        dexl bendav balafirgeh bazirganî sînor derî zanîngeh mamoste mamosteyan doktor lîstik
        tîm festîval çîrok pirtûk ziman zimanê kurdî nûçe rojname televizyon jin jinan ciwan
        ciwanan kar karê mezin biçûk baş zêde kêm hemû gelek çend her hin yek du sê deh hezar
        mîlyon projeya xizmetguzarî avakirin komîte plan pere dest pê kir dikin dibe bûn heye
        tune êdî hîn jî
        """
    ),
    "ckb": _vocab(
        """
        لە و بۆ کە ئەم ئەو هەرێمی کوردستان شاری شارەکە حکومەتی وەزیری پارێزگای پۆلیس هێزەکانی
        ئاسایش گوند گوندەکان ناوچەی سەرۆکی کۆبوونەوە ئاشتی وڵات خەڵک خەڵکی منداڵان قوتابخانە
        قوتابیان نەخۆشخانە ئاو کارەبا نرخی بازاڕ جووتیاران هەڵبژاردن پەرلەمان بودجە نەوت ڕێگا
        پرد کرێکاران مووچە ئاوارە کەمپ خێزان دادگا ڕۆژنامەنووس ڕاگەیەندراو وتەبێژ ڕۆژی دووشەممە
        سێشەممە ئەمڕۆ دوێنێ هەفتە ساڵ نوێ دوای پێش نزیک دژی نێوان باکوور باشوور ڕۆژهەڵات ڕۆژئاوا
        ڕێککەوتن گفتوگۆ شاند سەردان ڕایگەیاند دانیشتوان کار کلتوور مۆسیقا گۆرانی مێژوو چیا
        ڕووبار باران گەنم بەنداو فڕۆکەخانە بازرگانی سنوور زانکۆ مامۆستایان پزیشک یاری تیپ
        فێستیڤاڵ کتێب زمانی کوردی هەواڵ ڕۆژنامە تەلەفزیۆن ئافرەتان گەنجان گەورە بچووک باش زیاتر
        کەمتر هەموو زۆر چەند هەر یەک دوو سێ دە هەزار ملیۆن کرد دەکات دەڵێت کرا بوو هەیە نییە
        بەرپرسان پڕۆژە ئاوەدانکردنەوە خزمەتگوزاری لیژنە پلان پارە دەستی پێکرد
        """
    ),
    "ar": _vocab(
        """
        في من على إلى عن مع و أن التي الذي قال أعلن مسؤولون الحكومة وزير وزارة مدينة محافظة
        الشرطة قوات الأمن قرية قرى منطقة رئيس اجتماع السلام البلاد المواطنين الأطفال المدارس
        الطلاب مستشفى الصحة المياه الكهرباء أسعار السوق المزارعين الانتخابات البرلمان الموازنة
        النفط الصادرات طريق جسر العمال الرواتب النازحين مخيم العائلات المحكمة الصحفيين بيان
        المتحدث يوم الاثنين الثلاثاء اليوم أمس الأسبوع العام جديد بعد قبل خلال قرب ضد بين شمال
        جنوب شرق غرب اتفاق مفاوضات وفد زيارة السكان العمل الثقافة الموسيقى التاريخ الجبال النهر
        الأمطار القمح السد المطار التجارة الحدود الجامعة المعلمين الأطباء مباراة الفريق مهرجان
        كتاب اللغة الأخبار الصحيفة التلفزيون النساء الشباب كبير صغير أكثر أقل جميع عدة كل واحد
        اثنين ثلاثة عشرة ألف مليون مشروع الخدمات إعمار تنفيذ لجنة مجلس المحلي الاتحادي إقليم خطة
        تمويل بدأ يعمل كان كانت هناك
        """
    ),
}
LANGUAGES = tuple(WORDS)
_LANGUAGE_WEIGHTS = {"ckb": 0.3, "kmr": 0.2, "ar": 0.3, "en": 0.2}
_LATIN = {"en", "kmr"}
_COMMA = {"en": ",", "kmr": ",", "ckb": "،", "ar": "،"}

WATCH_PHRASES: dict[str, tuple[str, ...]] = {
    "en": ("in Khanaqin", "Diyala province", "a suicide bomber", "Khanaqin and Diyala"),
    "ar": ("في خانقين", "محافظة ديالى", "انتحاري", "هجوم انتحاري"),
    "ckb": ("لە خانەقین", "پارێزگای دیالە", "خۆتەقێنەر"),
    "kmr": ("li Xaneqîn", "Diyale", "xwekuj"),
}
"""Phrases that the benchmark's watchlists (the seed story's) match, per language."""

WATCH_FRACTION = 0.02
ATOM_FRACTION = 0.15
FOREIGN_ITEM_FRACTION = 0.1
HINT_FRACTION = 0.75
"""Feeds whose config entry carries a `language:` hint."""

_BASE_TIME = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class GenItem:
    guid: str
    link: str
    title: str
    summary: str
    """Plain text; the document carries it as HTML."""
    published: datetime
    language: str
    watch: bool
    """Whether a watchlist phrase was put in."""


@dataclass(frozen=True, slots=True)
class GenFeed:
    index: int
    name: str
    path: str
    """URL path on the benchmark server, e.g. /feeds/00042.xml."""
    language: str
    hint: str | None
    """The `language:` to put in the config, or None."""
    format: str
    """'rss20' or 'atom10'."""
    items: tuple[GenItem, ...]
    body: bytes
    content_type: str
    last_modified: datetime
    revision: int = 0
    """How many updates the feed has had (see `generate_feed`)."""


def _words(rng: random.Random, language: str, length: int, most: int | None = None) -> str:
    """Words of `language`: at least `length` characters, at most `most` (default `length`+20)."""
    vocab = WORDS[language]
    most = length + 20 if most is None else most
    out: list[str] = []
    size = -1
    while size < length:
        word = rng.choice(vocab)
        out.append(word)
        size += len(word) + 1
    text = " ".join(out)
    if len(text) > most:
        text = text[: text.rfind(" ", 0, most + 1)] or text[:most]
    return text


def _sentence(rng: random.Random, language: str, length: int) -> str:
    text = _words(rng, language, length)
    if rng.random() < 0.3 and " " in text:
        at = text.index(" ", len(text) // 2) if " " in text[len(text) // 2 :] else len(text)
        text = text[:at] + _COMMA[language] + text[at:]
    if language in _LATIN:
        text = text[:1].upper() + text[1:]
    return text + "."


def _summary(rng: random.Random, language: str, length: int) -> str:
    sentences = []
    size = 0
    while size < length:
        want = min(rng.randint(60, 160), max(30, length - size - 2))
        sentence = _sentence(rng, language, want)
        sentences.append(sentence)
        size += len(sentence) + 1
    return " ".join(sentences)


def _title(rng: random.Random, language: str) -> str:
    text = _words(rng, language, rng.randint(40, 120), 120)
    if language in _LATIN:
        text = text[:1].upper() + text[1:]
    return text


def _insert(rng: random.Random, text: str, phrase: str) -> str:
    spaces = [i for i, c in enumerate(text) if c == " "]
    if not spaces:
        return f"{text} {phrase}"
    at = rng.choice(spaces)
    return f"{text[:at]} {phrase}{text[at:]}"


def _html(rng: random.Random, summary: str, link: str) -> str:
    """The summary as publishers send it: paragraphs, an occasional link or emphasis."""
    sentences = summary.split(". ")
    cut = sorted(rng.sample(range(1, len(sentences)), min(len(sentences) - 1, rng.randint(0, 2))))
    paragraphs = []
    start = 0
    for end in [*cut, len(sentences)]:
        paragraphs.append(". ".join(sentences[start:end]))
        start = end
    out = []
    for paragraph in paragraphs:
        body = escape(paragraph)
        roll = rng.random()
        if roll < 0.2 and " " in body:
            head, tail = body.split(" ", 1)
            body = f"<strong>{head}</strong> {tail}"
        elif roll < 0.35:
            body = f'{body} <a href="{escape(link)}">…</a>'
        out.append(f"<p>{body}</p>")
    return "\n".join(out)


def _item(
    rng: random.Random,
    feed: int,
    number: int,
    language: str,
    host: str,
    published: datetime | None = None,
) -> GenItem:
    title = _title(rng, language)
    summary = _summary(rng, language, rng.randint(200, 570))
    watch = rng.random() < WATCH_FRACTION
    if watch:
        phrase = rng.choice(WATCH_PHRASES[language])
        if rng.random() < 0.5:
            title = _insert(rng, title, phrase)
        else:
            summary = _insert(rng, summary, phrase)
    if published is None:
        published = _BASE_TIME - timedelta(
            hours=feed % 24, minutes=37 * number + rng.randint(0, 20)
        )
    slug = f"{published:%Y/%m/%d}/{feed:05d}-{number:03d}"
    return GenItem(
        guid=f"bench-{feed:05d}-{number:03d}",
        link=f"https://{host}/{language}/{slug}.html",
        title=title,
        summary=summary,
        published=published,
        language=language,
        watch=watch,
    )


def _rss_head(feed: int, language: str, host: str, newest: datetime) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:atom="http://www.w3.org/2005/Atom">\n<channel>\n'
        f"<title>Bench feed {feed} ({language})</title>\n"
        f"<link>https://{host}/</link>\n"
        f"<description>Synthetic {language} news for the news-monitor benchmark</description>\n"
        f"<language>{language}</language>\n"
        f"<lastBuildDate>{format_datetime(newest)}</lastBuildDate>\n"
        f'<atom:link href="https://{host}/feed.xml" rel="self" type="application/rss+xml"/>\n'
    )


def _rss_item(item: GenItem, rng: random.Random) -> str:
    html = _html(rng, item.summary, item.link)
    description = f"<![CDATA[{html}]]>" if rng.random() < 0.5 else escape(html)
    permalink = rng.random() < 0.3
    guid = (
        f'<guid isPermaLink="true">{escape(item.link)}</guid>'
        if permalink
        else f'<guid isPermaLink="false">{item.guid}</guid>'
    )
    return (
        "<item>\n"
        f"  <title>{escape(item.title)}</title>\n"
        f"  <link>{escape(item.link)}</link>\n"
        f"  {guid}\n"
        f"  <pubDate>{format_datetime(item.published)}</pubDate>\n"
        f"  <dc:creator>Desk {rng.randint(1, 40)}</dc:creator>\n"
        f"  <category>{escape(_words(rng, item.language, 12))}</category>\n"
        f"  <description>{description}</description>\n"
        "</item>\n"
    )


def _atom_head(feed: int, language: str, host: str, newest: datetime) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{language}">\n'
        f"<title>Bench feed {feed} ({language})</title>\n"
        f"<id>tag:{host},2025:feed</id>\n"
        f'<link rel="alternate" href="https://{host}/"/>\n'
        f'<link rel="self" href="https://{host}/atom.xml"/>\n'
        f"<updated>{newest.isoformat()}</updated>\n"
    )


def _atom_item(item: GenItem, rng: random.Random, host: str) -> str:
    html = _html(rng, item.summary, item.link)
    stamp = item.published.isoformat()
    return (
        "<entry>\n"
        f'  <title type="text">{escape(item.title)}</title>\n'
        f'  <link rel="alternate" type="text/html" href={quoteattr(item.link)}/>\n'
        f"  <id>tag:{host},2025:{item.guid}</id>\n"
        f"  <published>{stamp}</published>\n"
        f"  <updated>{stamp}</updated>\n"
        f"  <author><name>Desk {rng.randint(1, 40)}</name></author>\n"
        f"  <category term={quoteattr(_words(rng, item.language, 12))}/>\n"
        f'  <summary type="html">{escape(html)}</summary>\n'
        "</entry>\n"
    )


_TAILS = {"rss20": "</channel>\n</rss>\n", "atom10": "</feed>\n"}


def _fragment(fmt: str, item: GenItem, rng: random.Random, host: str) -> str:
    return _atom_item(item, rng, host) if fmt == "atom10" else _rss_item(item, rng)


def _head(fmt: str, feed: int, language: str, host: str, newest: datetime) -> str:
    build = _atom_head if fmt == "atom10" else _rss_head
    return build(feed, language, host, newest)


def _item_language(rng: random.Random, language: str) -> str:
    if rng.random() < FOREIGN_ITEM_FRACTION:
        return rng.choice([x for x in LANGUAGES if x != language])
    return language


def generate_feed(
    index: int, items: int = 30, seed: int = 1, revision: int = 0, new_per_revision: int = 3
) -> GenFeed:
    """Feed number `index`: the same bytes for the same arguments, whatever N is.

    Revision r > 0 is the feed after r updates: `new_per_revision` newer items at the top each
    time, the same number of the oldest dropped, the `Last-Modified` r hours later. Items kept
    from an earlier revision keep their exact bytes (guid, markup), as on a real site.
    """
    rng = random.Random(f"news-monitor-bench:{seed}:{index}")
    language = rng.choices(list(_LANGUAGE_WEIGHTS), weights=list(_LANGUAGE_WEIGHTS.values()))[0]
    fmt = "atom10" if rng.random() < ATOM_FRACTION else "rss20"
    hint = language if rng.random() < HINT_FRACTION else None
    host = f"news{index % 97}.example.org"
    generated: list[GenItem] = []
    for number in range(items):
        item_language = _item_language(rng, language)
        generated.append(_item(rng, index, number, item_language, host))
    # The markup's random choices follow all of the items' in the same stream (as they always
    # have, so revision 0 is byte-identical to earlier versions of this file).
    fragments = [_fragment(fmt, item, rng, host) for item in generated]
    added = revision * new_per_revision if items else 0
    newer: list[tuple[GenItem, str]] = []
    for extra in range(added):
        number = items + extra
        item_rng = random.Random(f"news-monitor-bench:{seed}:{index}:new:{number}")
        published = _BASE_TIME + timedelta(minutes=10 * (extra + 1), seconds=index % 60)
        item = _item(item_rng, index, number, _item_language(item_rng, language), host, published)
        newer.append((item, _fragment(fmt, item, item_rng, host)))
    if added:
        pairs = [*reversed(newer), *zip(generated, fragments, strict=True)][:items]
        generated = [item for item, _ in pairs]
        fragments = [fragment for _, fragment in pairs]
    text = ""
    if generated:
        text = _head(fmt, index, language, host, generated[0].published)
        text += "".join(fragments) + _TAILS[fmt]
    content_type = (
        "application/atom+xml; charset=utf-8"
        if fmt == "atom10"
        else "application/rss+xml; charset=utf-8"
    )
    return GenFeed(
        index=index,
        name=f"bench-{index:05d}",
        path=f"/feeds/{index:05d}.xml",
        language=language,
        hint=hint,
        format=fmt,
        items=tuple(generated),
        body=text.encode("utf-8"),
        content_type=content_type,
        last_modified=_BASE_TIME.replace(microsecond=0)
        - timedelta(minutes=index % 60)
        + timedelta(hours=revision),
        revision=revision,
    )


def generate_feeds(feeds: int, items: int = 30, seed: int = 1) -> list[GenFeed]:
    return [generate_feed(index, items, seed) for index in range(feeds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=10)
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the feeds here as files")
    args = parser.parse_args()
    generated = generate_feeds(args.feeds, args.items, args.seed)
    sizes = [len(feed.body) for feed in generated]
    all_items = [item for feed in generated for item in feed.items]
    watch = sum(item.watch for item in all_items)
    print(
        f"{len(generated)} feeds, {len(all_items)} items, {sum(sizes):,} bytes "
        f"(mean {sum(sizes) / max(1, len(sizes)):,.0f} B/feed), "
        f"{watch} items ({watch / max(1, len(all_items)):.1%}) mention a watchlist term"
    )
    for language in LANGUAGES:
        share = sum(item.language == language for item in all_items) / max(1, len(all_items))
        print(f"  {language}: {share:.0%} of items")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for feed in generated:
            (args.out / feed.path.rsplit("/", 1)[1]).write_bytes(feed.body)
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
