"""``nmes db ...``: the session store (info, upgrade, patients, sessions, export, import)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from opennmes import store as record
from opennmes.errors import StoreError
from opennmes.store import ENV_VAR
from opennmes.units import parse_quantity

__all__ = ["register"]

group = typer.Typer(help="The session record: database info and migrations, patients, "
                         "sessions, export and import.", no_args_is_help=True)

DbOption = Annotated[str | None, typer.Option(
    "--db", help=f"Database URL (sqlite:///file.db or postgresql://user:pw@host/db); default "
                 f"${ENV_VAR}, else opennmes.db in the user data folder.")]


@group.command()
def info(db: DbOption = None) -> None:
    """Where the database is, its schema revision, and how many rows it holds."""
    with record.open_store(db) as store:
        for key, value in store.info().items():
            typer.echo(f"{key:18s} {value}")


@group.command()
def upgrade(db: DbOption = None) -> None:
    """Create or migrate the database to the newest schema (opening does this too)."""
    before, after = record.migrate(db)
    if before == after:
        typer.echo(f"already at revision {after}")
    else:
        typer.echo(f"migrated from {before or 'empty'} to {after}")


@group.command()
def patients(
    db: DbOption = None,
    clinician: Annotated[str | None, typer.Option(help="Only this clinician's patients.")]
    = None,
) -> None:
    """List patients (pseudonymous ids) with what dosing needs."""
    with record.open_store(db) as store:
        rows = store.list_patients(clinician=clinician)
    if not rows:
        typer.echo("no patients")
    for p in rows:
        factors = ", ".join(c["factor"] + (f"@{c['site']}" if c["site"] else "")
                            for c in p.contraindications) or "-"
        height = f"{p.height:.2f} m" if p.height is not None else "-"
        mass = f"{p.mass:.1f} kg" if p.mass is not None else "-"
        typer.echo(f"{p.id:16s} born {p.year_of_birth or '-'}  {p.sex or '-':6s}  {height:>7s}"
                   f"  {mass:>8s}  contraindications: {factors}  clinician: "
                   f"{p.clinician or '-'}")


def _mass(text: str) -> float:
    """``"71.5 kg"`` -> 71.5 (kg); the unit is required."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*kg\s*", text)
    if not m:
        raise StoreError(f"--mass {text!r}: give the body mass with its unit, e.g. '71.5 kg'")
    return float(m.group(1))


@group.command("add-patient")
def add_patient(
    patient_id: Annotated[str | None, typer.Argument(
        help="Pseudonymous id (A-Z a-z 0-9 . _ -); a random P-xxxxxxxx when left out.")]
    = None,
    db: DbOption = None,
    year_of_birth: Annotated[int | None, typer.Option(help="Year of birth.")] = None,
    sex: Annotated[str | None, typer.Option(help="female, male or other.")] = None,
    height: Annotated[str | None, typer.Option(help="Body height with unit, e.g. '164 cm'.")]
    = None,
    mass: Annotated[str | None, typer.Option(help="Body mass with unit, e.g. '71.5 kg'.")]
    = None,
    contraindication: Annotated[list[str] | None, typer.Option(
        help="Screening factor, optionally at sites: 'pacemaker' or 'metal_implant@left "
             "quadriceps' (sites comma-separated; repeat the option per factor). Unknown "
             "factors or sites are refused with the known names.")] = None,
    clinician: Annotated[str | None, typer.Option(help="Owning clinician's user name.")]
    = None,
) -> None:
    """Add a patient (no names: a pseudonymous id and what dosing and screening need)."""
    from opennmes.store import check_contraindication

    factors = []
    for item in contraindication or []:
        factor, _, site = item.partition("@")
        try:
            factors.append(check_contraindication(factor, site.strip() or None))
        except StoreError as exc:
            raise StoreError(f"--contraindication {item!r}: {exc}") from None
    with record.open_store(db) as store:
        p = store.add_patient(
            patient_id, year_of_birth=year_of_birth, sex=sex,
            height=parse_quantity(height, "length", name="--height") if height else None,
            mass=_mass(mass) if mass else None, contraindications=factors,
            clinician=clinician)
    typer.echo(f"added patient {p.id}")


@group.command("import")
def import_cmd(
    folder: Annotated[Path, typer.Argument(
        help="A folder written by `nmes sessions export` (or `nmes db export`).")],
    db: DbOption = None,
) -> None:
    """Import an exported session (all or nothing)."""
    from opennmes.store import import_session

    with record.open_store(db) as store:
        sid = import_session(store, folder)
    typer.echo(f"imported {folder} as session {sid}")


def register(app: typer.Typer) -> None:
    """Add the ``db`` group to the ``nmes`` command. ``nmes db sessions`` and ``nmes db export``
    are the same commands as ``nmes sessions list`` and ``nmes sessions export``."""
    from opennmes.cli.sessions import export_cmd, list_cmd

    group.command("sessions")(list_cmd)
    group.command("export")(export_cmd)
    app.add_typer(group, name="db")
