"""The thin serial layer of the Hasomed drivers: a pyserial port, a reader thread feeding a
sans-I/O frame decoder, and request/acknowledgement matching with retries."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from opennmes.devices._realtime import device_thread
from opennmes.errors import DeviceError, DeviceTimeoutError, ProtocolError

__all__ = ["SerialLink", "DecoderLike"]

log = logging.getLogger(__name__)


class DecoderLike(Protocol):
    def feed(self, data: bytes) -> None: ...

    def next_frame(self) -> Any: ...


class SerialLink:
    """A serial port with a reader thread.

    Parameters
    ----------
    port : str
        Device path (``/dev/ttyUSB0``, a pseudo-terminal, ``COM3``).
    settings : dict
        pyserial settings (baudrate, parity, stopbits, bytesize).
    decoder : DecoderLike
        Sans-I/O frame decoder.
    on_frame : callable
        ``on_frame(frame, t)`` for every decoded frame, ``t`` = ``time.monotonic()``.
    on_protocol_error : callable
        ``on_protocol_error(exc)`` for every undecodable frame.
    on_disconnect : callable
        ``on_disconnect(reason)`` once, when the port fails.
    """

    def __init__(self, port: str, settings: dict[str, Any], decoder: DecoderLike,
                 on_frame: Callable[[Any, float], None],
                 on_protocol_error: Callable[[ProtocolError], None],
                 on_disconnect: Callable[[str], None]) -> None:
        self.port = port
        self.settings = settings
        self.decoder = decoder
        self.on_frame = on_frame
        self.on_protocol_error = on_protocol_error
        self.on_disconnect = on_disconnect
        self._ser: Any = None
        self._thread: threading.Thread | None = None
        self._running = False
        self._wlock = threading.Lock()
        self.alive = False
        self.bytes_in = 0
        self.bytes_out = 0

    def open(self) -> None:
        import serial

        try:
            try:
                self._ser = serial.Serial(self.port, timeout=0.05, write_timeout=1.0,
                                          **self.settings)
            except Exception:
                if not _is_pty(self.port) or self.settings.get("parity", "N") == "N":
                    raise
                # Linux pseudo-terminals (the emulators) refuse parity once a previous user
                # closed them; parity has no meaning on a pty, so open without it
                log.info("%s is a pseudo-terminal: opening without parity", self.port)
                self._ser = serial.Serial(self.port, timeout=0.05, write_timeout=1.0,
                                          **{**self.settings, "parity": "N"})
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceError(f"cannot open serial port {self.port}: {exc}. Check the cable, "
                              "the port name (nmes devices) and permissions (Linux: add "
                              "yourself to the 'dialout' group)") from exc
        self._running = True
        self.alive = True
        self._thread = threading.Thread(target=self._read_loop, name=f"serial {self.port}",
                                        daemon=True)
        self._thread.start()

    def _read_loop(self) -> None:
        with device_thread():  # raised with the loop by realtime()
            self._read_until_closed()

    def _read_until_closed(self) -> None:
        ser = self._ser
        while self._running:
            try:
                data = ser.read(max(1, ser.in_waiting))
            except Exception as exc:  # pyserial raises SerialException / OSError / TypeError
                if self._running:
                    self._fail(f"read failed: {exc}")
                return
            if not data:
                continue
            t = time.monotonic()
            self.bytes_in += len(data)
            self.decoder.feed(data)
            while True:
                try:
                    frame = self.decoder.next_frame()
                except ProtocolError as exc:
                    self.on_protocol_error(exc)
                    continue
                if frame is None:
                    break
                try:
                    self.on_frame(frame, t)
                except Exception:
                    log.exception("frame handler failed")

    def _fail(self, reason: str) -> None:
        if self.alive:
            self.alive = False
            self.on_disconnect(reason)

    def write(self, data: bytes) -> None:
        if not self.alive:
            raise DeviceError(f"{self.port}: the device is disconnected")
        try:
            with self._wlock:
                self._ser.write(data)
                self.bytes_out += len(data)
        except Exception as exc:
            self._fail(f"write failed: {exc}")
            raise DeviceError(f"{self.port}: write failed ({exc}); device disconnected?") \
                from exc

    def close(self) -> None:
        self._running = False
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.cancel_read()
            except Exception:
                pass
            try:
                ser.close()
            except Exception:
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        self.alive = False


def _is_pty(port: str) -> bool:
    import os

    return os.path.realpath(port).startswith("/dev/pts/")


class Waiter:
    """One outstanding request: set by the reader thread when its acknowledgement arrives."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.message: Any = None
        self.t = 0.0

    def wait(self, timeout: float) -> bool:
        return self.event.wait(timeout)


def timeout_error(port: str, what: str, timeout: float, tries: int) -> DeviceTimeoutError:
    return DeviceTimeoutError(f"{port}: no acknowledgement of {what} within {timeout * 1e3:.0f} "
                              f"ms after {tries} tries; stimulation stopped")
