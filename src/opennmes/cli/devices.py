"""``nmes devices`` (serial ports that look like stimulators) and ``nmes emulate
rehastim2|p24|i24`` (a byte-exact emulator on a pseudo-terminal, until stopped)."""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import Annotated, Any

import typer

__all__ = ["register"]


def devices(
    as_json: Annotated[bool, typer.Option("--json", help="Print the ports as JSON.")] = False,
) -> None:
    """List serial ports and say which look like a known stimulator (by USB ids)."""
    from opennmes.devices import SCHEMES, list_ports

    ports = list_ports()
    if as_json:
        typer.echo(json.dumps([{"device": p.device, "description": p.description,
                                "vid": p.vid, "pid": p.pid, "serial_number": p.serial_number,
                                "looks_like": p.looks_like, "url": p.url} for p in ports],
                              indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not ports:
        console.print("no serial ports found (plug the stimulator in; on Linux check "
                      "'dmesg' and that you are in the 'dialout' group)")
    else:
        table = Table("port", "description", "USB id", "looks like", "URL")
        for p in ports:
            usb = f"{p.vid:04x}:{p.pid:04x}" if p.vid is not None and p.pid is not None else ""
            table.add_row(p.device, p.description, usb, p.looks_like or "-", p.url or "-")
        console.print(table)
    console.print("URL schemes: " + ", ".join(f"{k}://" for k in SCHEMES)
                  + "  (no hardware: nmes emulate rehastim2|p24|i24)")


def _emulate(kind: str, duration: float | None, record: str | None,
             escapes: str = "tolerant") -> None:
    from pathlib import Path

    from opennmes.cli._paths import make_parent, output_file
    from opennmes.devices.sciencemode2 import RehaStim2Emulator
    from opennmes.devices.sciencemode4 import P24Emulator

    if record:
        output_file(Path(record), "--record", (".csv", ".parquet"))
    emu = RehaStim2Emulator(escapes=escapes) if kind == "rehastim2" else P24Emulator()
    port = emu.start()
    typer.echo(f"{kind} emulator on {port}", err=False)
    typer.echo(f"open it with: {kind}://{port}")
    _serve(emu, duration)
    pulses = len(emu.record)
    singles = len(emu.single_record)
    zero = emu.output_is_zero
    if record:
        emu.record.schedule().write(str(make_parent(Path(record))))
    typer.echo(f"stopped: {pulses} pulses recorded in the last run, {singles} single pulses, "
               f"output {'zero' if zero else 'NOT zero'}")


def _emulate_i24(duration: float | None, emg: str | None, seed: int) -> None:
    from pathlib import Path

    from opennmes.devices.sciencemode4 import I24Emulator
    from opennmes.sensing import read_signals

    signals = None
    if emg is not None:
        from opennmes.cli._paths import input_table

        input_table(Path(emg))
        signals = read_signals(emg)
    emu = I24Emulator(signals, seed=seed)
    port = emu.start()
    typer.echo(f"i24 emulator on {port}", err=False)
    typer.echo(f"use it with: nmes run ... --sensor emg=i24:{port},rate=1000")
    _serve(emu, duration)
    typer.echo(f"stopped: {emu.measurements} measurements, {emu.sent} samples in the last one")


def _serve(emu: Any, duration: float | None) -> None:
    """Run ``emu`` until SIGTERM/SIGINT or ``duration`` s, then close it (its device thread
    first: nothing contends for its lock afterwards)."""
    stop = threading.Event()

    def _quit(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _quit)
    signal.signal(signal.SIGINT, _quit)
    t_end = None if duration is None else time.monotonic() + duration
    try:
        while not stop.wait(0.1):
            if t_end is not None and time.monotonic() >= t_end:
                break
    finally:
        emu.close()


_DURATION = typer.Option(help="Stop after this many seconds (default: until stopped).")
_RECORD = typer.Option(help="On exit, write the pulses of the last run to this .csv or "
                            ".parquet file (channels ch1..ch8, times from its start).")


def register(app: typer.Typer) -> None:
    app.command("devices")(devices)
    emulate = typer.Typer(help="Run a stimulator emulator that speaks the real bytes on a "
                               "pseudo-terminal (prints the port; runs until Ctrl-C).",
                          no_args_is_help=True)

    @emulate.command("rehastim2")
    def rehastim2(duration: Annotated[float | None, _DURATION] = None,
                  record: Annotated[str | None, _RECORD] = None,
                  escapes: Annotated[str, typer.Option(
                      help="Escapes of bytes the protocol does not require escaping (0x0A, "
                           "0x55): tolerant reads them, strict answers a transfer error "
                           "(docs/devices/rehastim2.md).")] = "tolerant") -> None:
        """Emulate a Hasomed RehaStim 2 (ScienceMode2)."""
        _emulate("rehastim2", duration, record, escapes)

    @emulate.command("p24")
    def p24(duration: Annotated[float | None, _DURATION] = None,
            record: Annotated[str | None, _RECORD] = None) -> None:
        """Emulate a Hasomed P24 (ScienceMode4, mid and low level)."""
        _emulate("p24", duration, record)

    @emulate.command("i24")
    def i24(duration: Annotated[float | None, _DURATION] = None,
            emg: Annotated[str | None, typer.Option(
                help="Recording whose first channel(s) the EMG channels play from each "
                     "measurement's start, looped (C3D, EDF/BDF, CSV, text; values as in the "
                     "file, V expected). Default: 5 uV rest noise.")] = None,
            seed: Annotated[int, typer.Option(help="Seed of the rest noise.")] = 0) -> None:
        """Emulate a Hasomed I24 measurement device (ScienceMode4 dyscom: EMG and
        bioimpedance live data, 250 to 32000 samples/s)."""
        _emulate_i24(duration, emg, seed)

    app.add_typer(emulate, name="emulate")
