#!/usr/bin/env python3
"""Build the project's number plan (``data/*.csv``) from the reference data in ``../shared/data``.

Run once when the reference data changes; the output is committed and is what ``fourteen db seed`` loads.
Nothing is inferred from geography or memory: every value comes from a named source row, and gaps stay
empty. The few decisions this script takes (which area code a municipality without one gets, which
municipality is not connected) are listed in ``data/SOURCES.md``.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Municipalities whose own number is not geographic (088/0900): the area code comes from the only
# evidence the reference data has for them. Each entry names that evidence.
AREA_CODE_FROM_EVIDENCE = {
    "GM0394": ("0252", "place Nieuw-Vennep in 0252 (libphonenumber/carr lists); own number 0900 1852"),
    "GM1966": ("0595", "place Warffum in 0595 (libphonenumber/carr lists); own number is 088"),
    "GM1911": ("0227", "place Middenmeer in 0227 (libphonenumber/carr lists); own number is 088"),
    "GM1978": ("0184", "former municipality Molenwaard had 14 0184 (almanak 2014, straatinfo 2018)"),
}

# The 2020 user study names Haarlemmermeer as a municipality that is not connected to 14+ (its calls were
# silently routed to Haarlem). It is the only status fact the sources give; everything else is connected.
NOT_CONNECTED = {"GM0394": "I&O Research 2020 user study: Haarlemmermeer not connected (routed to Haarlem)"}

ALIAS_KIND = {
    "officiele_naam_cbs_2025": "official",
    "naam_zonder_cbs_toevoeging": "short",
    "spreektaal/gangbare_naam": "colloquial",
    "plaatsnaam_spreektaal": "colloquial",
    "spellingvariant_in_bron": "spelling",
    "nederlandstalige_naam (Fries officieel)": "dutch_name",
    "voormalige_gemeente": "former",
    "voormalige_gemeente (afgeleid)": "former",
    "voormalige_gemeente (gesplitst 2021; deel)": "former_split",
}


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=header, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in header})
    print(f"wrote {path.relative_to(ROOT)}: {len(rows)} rows")


def place_kind(kind: str) -> str:
    return "woonplaats" if kind.startswith("BAG") else "kern"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "data")
    args = ap.parse_args(argv)
    src: Path = args.shared
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    munis = read(src / "municipalities.csv")
    by_code = {m["cbs_code"]: m for m in munis}
    places = read(src / "places.csv")
    area_codes = read(src / "area_codes.csv")
    aliases = read(src / "aliases.csv")
    fourteen = read(src / "fourteen_plus.csv")

    # --- municipalities -------------------------------------------------------------------------
    mrows = []
    for m in munis:
        code = m["cbs_code"]
        area, area_src = m["main_area_code"], m["main_area_code_source"]
        if not area and code in AREA_CODE_FROM_EVIDENCE:
            area, area_src = AREA_CODE_FROM_EVIDENCE[code]
        status = (
            "not_connected"
            if code in NOT_CONNECTED
            else ("active" if m["fourteen_plus_number"] else "technical")
        )
        mrows.append(
            {
                "cbs_code": code,
                "name": m["name"],
                "name_short": m["name_short"],
                "province": m["province"],
                "seat": m["seat"],
                "main_area_code": area,
                "main_area_code_source": area_src,
                "phone_general": m["phone_general"],
                "phone_ref_date": m["phone_ref_date"],
                "fourteen_plus_number": m["fourteen_plus_number"],
                "status": status,
                "status_source": NOT_CONNECTED.get(
                    code,
                    "14+ number published (sources 2014-2019)"
                    if status == "active"
                    else "no published 14+ number found; technically connected",
                ),
            }
        )
    write(out / "municipalities.csv", list(mrows[0].keys()), mrows)

    # --- area codes: evidenced municipalities, plus each municipality's main area code ---------------
    members: dict[str, set[str]] = defaultdict(set)
    for a in area_codes:
        for c in filter(None, a["municipalities_evidenced"].split(";")):
            members[a["area_code"]].add(c)
    for m in mrows:
        if m["main_area_code"]:
            members[m["main_area_code"]].add(m["cbs_code"])
    arows = []
    for a in area_codes:
        codes = sorted(members[a["area_code"]], key=lambda c: by_code[c]["name"].lower())
        arows.append(
            {
                "area_code": a["area_code"],
                "main_place": a["main_place"],
                "municipalities": ";".join(codes),
                "evidence": "shared"
                if len(codes) > 1
                else "one municipality evidenced; completeness unknown",
                "places_evidenced": a["places_evidenced"],
            }
        )
    write(out / "area_codes.csv", list(arows[0].keys()), arows)

    # --- places ---------------------------------------------------------------------------------------
    prows = [
        {
            "place": p["place"],
            "kind": place_kind(p["kind"]),
            "woonplaats_code": p["woonplaats_code"],
            "municipality_cbs_code": p["municipality_cbs_code"],
            "area_code": p["area_code"],
            "area_code_indicative": p["area_code_indicative"],
        }
        for p in places
    ]
    write(out / "places.csv", list(prows[0].keys()), prows)

    # --- aliases --------------------------------------------------------------------------------------
    place_names = {(p["municipality_cbs_code"], p["place"]) for p in places}
    seen: set[tuple[str, str, str]] = set()
    alrows = []
    for a in aliases:
        kind_src = a["kind"]
        if kind_src.startswith("plaatsnaam_tweetalig"):
            kind, place = "place_pair", a["refers_to"]
        else:
            kind = ALIAS_KIND.get(kind_src, "other")
            place = a["refers_to"] if kind == "colloquial" and a["refers_to"].startswith("'s-") else ""
        if kind == "official":
            continue  # the name itself is in municipalities.csv
        if kind == "place_pair" and (a["municipality_cbs_code"], place) not in place_names:
            place = ""  # the pair's other half is not a place in our list; keep it as a municipality alias
        key = (a["municipality_cbs_code"], a["alias"], place)
        if key in seen:
            continue
        seen.add(key)
        alrows.append(
            {
                "alias": a["alias"],
                "municipality_cbs_code": a["municipality_cbs_code"],
                "kind": kind,
                "place": place,
                "source": a["source"],
            }
        )
    extra = (
        read(ROOT / "data" / "aliases_extra.csv") if (ROOT / "data" / "aliases_extra.csv").exists() else []
    )
    for e in extra:
        key = (e["municipality_cbs_code"], e["alias"], e.get("place", ""))
        if key not in seen:
            seen.add(key)
            alrows.append(e)
    write(out / "aliases.csv", ["alias", "municipality_cbs_code", "kind", "place", "source"], alrows)

    # --- 14+ numbers (as published, for reference and for announcing) ---------------------------------
    frows = [
        {
            "municipality_cbs_code": f["municipality_cbs_code"],
            "name_in_source": f["name_in_source"],
            "fourteen_plus_number": f["fourteen_plus_number"],
            "area_code": f["area_code"],
            "historic": "1" if f["status"].startswith("historisch") else "",
            "ref_date": f["ref_date"],
            "source": f["source"],
        }
        for f in fourteen
    ]
    write(out / "fourteen_plus.csv", list(frows[0].keys()), frows)

    amb = read(src / "ambiguous_places.csv")
    write(
        out / "ambiguous_places.csv",
        ["name", "place_official", "municipality_cbs_code", "municipality_name", "n_municipalities"],
        amb,
    )

    unreachable = [m["name"] for m in mrows if not any(m["cbs_code"] in s for s in members.values())]
    if unreachable:
        print("municipalities behind no area code:", unreachable, file=sys.stderr)
        return 1
    bad = [
        m["name"] for m in mrows if m["main_area_code"] and not re.fullmatch(r"0\d{1,3}", m["main_area_code"])
    ]
    if bad:
        print("malformed area codes:", bad, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
