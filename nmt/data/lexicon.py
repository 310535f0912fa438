"""The words of the generated corpus and the German inflection tables that decline them.

Kept apart from ``nmt.data.generated``, the grammar that combines them: this module is data (the
English/German lexicon, one German lemma per English word) plus the article and adjective-ending
tables; ``nmt.data.generated`` builds sentences, renders them with alignments and writes the splits.
"""

from __future__ import annotations

from typing import NamedTuple


class Noun(NamedTuple):
    en: str
    en_pl: str
    de: str
    gender: str  # "m", "f" or "n"
    de_pl: str


class Verb(NamedTuple):
    en: str  # also the English plural form
    en_3sg: str
    de_3sg: str
    de_pl: str
    frame: str  # "a": accusative object, "d": dative, "da": dative + accusative, "c": that-clause


class Adjective(NamedTuple):
    en: str
    de: str  # stem; always used attributively, so it always takes an ending


class Adverb(NamedTuple):
    en: str
    de: str
    front: bool  # True: sentence-initial in English (German inverts); False: before the verb


class Prep(NamedTuple):
    en: tuple[str, ...]
    de: str
    case: str  # "acc" or "dat"


class Conj(NamedTuple):
    en: tuple[str, ...]
    de: str


def _english_plural(word: str) -> str:
    if word.endswith(("s", "x", "ch", "sh", "o")):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _entries(text: str) -> list[tuple[str, list[str]]]:
    """Parse ``english words=German fields`` entries separated by commas."""
    pairs = [entry.split("=") for entry in text.replace("\n", " ").split(",")]
    return [(" ".join(en.split()), de.split()) for en, de in pairs]


def _noun(en: str, de: str, gender: str, de_pl: str) -> Noun:
    en, _, en_pl = en.partition("/")  # "man/men": an irregular English plural
    return Noun(en, en_pl or _english_plural(en), de, gender, de_pl)


# Lexicon: one German lemma per English word. The first ANIMATE nouns are people and animals.
NOUNS = tuple(
    _noun(en, *de)
    for en, de in _entries("""
man/men=Mann m Männer, woman/women=Frau f Frauen, child/children=Kind n Kinder, girl=Mädchen n
Mädchen, friend=Freund m Freunde, sister=Schwester f Schwestern, brother=Bruder m Brüder,
mother=Mutter f Mütter, father=Vater m Väter, son=Sohn m Söhne, daughter=Tochter f Töchter,
uncle=Onkel m Onkel, aunt=Tante f Tanten, teacher=Lehrer m Lehrer, doctor=Arzt m Ärzte, king=König
m Könige, queen=Königin f Königinnen, singer=Sänger m Sänger, painter=Maler m Maler, baker=Bäcker m
Bäcker, dog=Hund m Hunde, cat=Katze f Katzen, bird=Vogel m Vögel, horse=Pferd n Pferde, cow=Kuh f
Kühe, pig=Schwein n Schweine, mouse/mice=Maus f Mäuse, duck=Ente f Enten, goose/geese=Gans f Gänse,
wolf/wolves=Wolf m Wölfe, fox=Fuchs m Füchse, rabbit=Kaninchen n Kaninchen, frog=Frosch m Frösche,
bee=Biene f Bienen, spider=Spinne f Spinnen, snake=Schlange f Schlangen, house=Haus n Häuser,
car=Auto n Autos, book=Buch n Bücher, table=Tisch m Tische, chair=Stuhl m Stühle, tree=Baum m
Bäume, garden=Garten m Gärten, apple=Apfel m Äpfel, flower=Blume f Blumen, letter=Brief m Briefe,
picture=Bild n Bilder, door=Tür f Türen, window=Fenster n Fenster, bed=Bett n Betten, lamp=Lampe f
Lampen, cup=Tasse f Tassen, glass=Glas n Gläser, bottle=Flasche f Flaschen, ball=Ball m Bälle,
box=Kiste f Kisten, bag=Tasche f Taschen, key=Schlüssel m Schlüssel, shoe=Schuh m Schuhe, hat=Hut m
Hüte, coat=Mantel m Mäntel, shirt=Hemd n Hemden, song=Lied n Lieder, story=Geschichte f
Geschichten, city=Stadt f Städte, village=Dorf n Dörfer, street=Straße f Straßen, school=Schule f
Schulen, church=Kirche f Kirchen, bridge=Brücke f Brücken, river=Fluss m Flüsse, mountain=Berg m
Berge, forest=Wald m Wälder, field=Feld n Felder, boat=Boot n Boote, ship=Schiff n Schiffe,
train=Zug m Züge, bicycle=Fahrrad n Fahrräder, cake=Kuchen m Kuchen, bread=Brot n Brote, egg=Ei n
Eier, soup=Suppe f Suppen, clock=Uhr f Uhren, pen=Stift m Stifte, newspaper=Zeitung f Zeitungen,
map=Karte f Karten, ring=Ring m Ringe, stone=Stein m Steine, wall=Wand f Wände, room=Zimmer n
Zimmer, kitchen=Küche f Küchen""")
)
ANIMATE = 36

ADJECTIVES = tuple(
    Adjective(en, de)
    for en, (de,) in _entries("""big=groß, small=klein,
old=alt, young=jung, red=rot, blue=blau, green=grün, black=schwarz, yellow=gelb, brown=braun,
fast=schnell, slow=langsam, happy=glücklich, sad=traurig, loud=laut, beautiful=schön, strong=stark,
weak=schwach, rich=reich, poor=arm, clever=klug, friendly=freundlich, new=neu, warm=warm, cold=kalt,
hungry=hungrig, wild=wild, quiet=ruhig, funny=lustig, curious=neugierig, short=kurz, long=lang,
heavy=schwer, soft=weich, clean=sauber, dirty=schmutzig, brave=mutig, lazy=faul, famous=berühmt,
strange=seltsam, empty=leer, round=rund, sweet=süß, fresh=frisch, angry=wütend, proud=stolz""")
)

_VERB_TEXT = {  # frame -> "english=3rd-singular plural"; English 3rd singular is regular
    "a": """see=sieht sehen, find=findet finden, buy=kauft kaufen, hear=hört hören,
love=liebt lieben, hate=hasst hassen, carry=trägt tragen, paint=malt malen, visit=besucht besuchen,
draw=zeichnet zeichnen, wash=wäscht waschen, eat=isst essen, read=liest lesen, open=öffnet öffnen,
build=baut bauen, catch=fängt fangen, feed=füttert füttern, take=nimmt nehmen,
need=braucht brauchen, meet=trifft treffen, watch=beobachtet beobachten, clean=putzt putzen,
count=zählt zählen, greet=grüßt grüßen, hold=hält halten, throw=wirft werfen, pull=zieht ziehen,
push=schiebt schieben, lose=verliert verlieren, miss=vermisst vermissen, kiss=küsst küssen,
call=ruft rufen, cook=kocht kochen, choose=wählt wählen""",
    "d": """help=hilft helfen, follow=folgt folgen, thank=dankt danken,
answer=antwortet antworten, trust=vertraut vertrauen""",
    "da": """give=gibt geben, show=zeigt zeigen, send=schickt schicken, bring=bringt bringen,
lend=leiht leihen""",
    "c": """say=sagt sagen, think=denkt denken, believe=glaubt glauben, know=weiß wissen,
hope=hofft hoffen, notice=merkt merken, dream=träumt träumen""",
}
VERBS = tuple(
    Verb(en, _english_plural(en), de_3sg, de_pl, frame)
    for frame, text in _VERB_TEXT.items()
    for en, (de_3sg, de_pl) in _entries(text)
)

_FRONT = (
    "today=heute, now=jetzt, sometimes=manchmal, here=hier, there=dort, later=später, soon=bald"
)
_MID = "often=oft, always=immer, rarely=selten, usually=meistens, also=auch, really=wirklich"
ADVERBS = tuple(Adverb(en, de, True) for en, (de,) in _entries(_FRONT)) + tuple(
    Adverb(en, de, False) for en, (de,) in _entries(_MID)
)

PREPOSITIONS = tuple(
    Prep(tuple(en.split()), de, case)
    for en, (de, case) in _entries("""with=mit dat, behind=hinter dat, under=unter dat,
next to=neben dat, in front of=vor dat, after=nach dat, except=außer dat, without=ohne acc,
for=für acc, through=durch acc, against=gegen acc, around=um acc""")
)
CONJUNCTIONS = tuple(
    Conj(tuple(en.split()), de)
    for en, (de,) in _entries("""because=weil,
when=wenn, while=während, although=obwohl, as soon as=sobald, if=falls, until=bis""")
)
THAT = Conj(("that",), "dass")

# Determiner key -> (English singular, English plural or "" for none, German stem, adjective type).
DETERMINERS = {
    "the": ("the", "the", "d", "weak"),
    "this": ("this", "these", "dies", "weak"),
    "a": ("a", "", "ein", "mixed"),
    "my": ("my", "my", "mein", "mixed"),
    "no": ("no", "no", "kein", "mixed"),
}
_GENDERS = ("m", "f", "n", "p")  # table columns; "p" is the plural, which has no gender
DEFINITE = {"nom": "der die das die", "acc": "den die das die", "dat": "dem der dem den"}
STRONG = {"nom": "er e es e", "acc": "en e es e", "dat": "em er em en"}  # dieser, bare adjectives
EIN = {"nom": "_ e _ e", "acc": "en e _ e", "dat": "em er em en"}  # "_": no ending
_WEAK = {"nom": "e e e en", "acc": "en e e en", "dat": "en en en en"}
_MIXED = {"nom": "er e es en", "acc": "en e es en", "dat": "en en en en"}
ADJECTIVE_TABLES = {"weak": _WEAK, "mixed": _MIXED, "strong": STRONG}
VERB_CASES = {"a": ("acc",), "d": ("dat",), "da": ("dat", "acc"), "c": ()}


def inflect(table: dict[str, str], case: str, gender: str) -> str:
    """The cell of ``table`` for ``case`` and ``gender`` ("p": plural); "_" means no ending."""
    return table[case].split()[_GENDERS.index(gender)].replace("_", "")
