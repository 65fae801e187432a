"""All four provider emulators together, with the settings that point the bot at them."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.emulators.base import EmulatorServer, FakeClock
from tests.emulators.beesms import DEFAULT_TOKEN as BEESMS_TOKEN
from tests.emulators.beesms import BeeSmsEmulator
from tests.emulators.getsms import GetSmsEmulator
from tests.emulators.smsbus import DEFAULT_TOKEN as SMSBUS_TOKEN
from tests.emulators.smsbus import SmsBusEmulator
from tests.emulators.smsonline import DEFAULT_KEY as SMSONLINE_KEY
from tests.emulators.smsonline import SmsOnlineEmulator

GETSMS_KEY = "getsms-test-key"


@dataclass
class EmulatorSuite:
    clock: FakeClock = field(default_factory=FakeClock)
    getsms: GetSmsEmulator = field(init=False)
    smsbus: SmsBusEmulator = field(init=False)
    beesms: BeeSmsEmulator = field(init=False)
    smsonline: SmsOnlineEmulator = field(init=False)

    def __post_init__(self) -> None:
        self.getsms = GetSmsEmulator(self.clock, api_key=GETSMS_KEY)
        self.smsbus = SmsBusEmulator(self.clock, token=SMSBUS_TOKEN)
        self.beesms = BeeSmsEmulator(self.clock, token=BEESMS_TOKEN)
        self.smsonline = SmsOnlineEmulator(self.clock, api_key=SMSONLINE_KEY)

    @property
    def servers(self) -> dict[str, EmulatorServer]:
        return {
            "getsms": self.getsms,
            "smsbus": self.smsbus,
            "beesms": self.beesms,
            "smsonline": self.smsonline,
        }

    async def start(self, first_port: int = 0) -> None:
        """Start every emulator: on free ports, or on ``first_port`` and the next three."""
        for offset, server in enumerate(self.servers.values()):
            await server.start(first_port + offset if first_port else 0)

    async def stop(self) -> None:
        for server in self.servers.values():
            await server.stop()

    def set_latency(self, seconds: float) -> None:
        for server in self.servers.values():
            server.latency = seconds

    def env(self, only: tuple[str, ...] | None = None) -> dict[str, str]:
        """Settings (environment names) that enable the emulated providers."""
        entries = {
            "getsms": {
                "GETSMS_API_KEY": GETSMS_KEY,
                "GETSMS_BASE_URL": self.getsms.base_url,
                "GETSMS_CURRENCY": "USD",
            },
            "smsbus": {"SMSBUS_TOKEN": SMSBUS_TOKEN, "SMSBUS_BASE_URL": self.smsbus.base_url},
            "beesms": {"BEESMS_TOKEN": BEESMS_TOKEN, "BEESMS_BASE_URL": self.beesms.base_url},
            "smsonline": {
                "SMSONLINE_API_KEY": SMSONLINE_KEY,
                "SMSONLINE_BASE_URL": self.smsonline.base_url,
            },
        }
        env: dict[str, str] = {}
        for pid, values in entries.items():
            if only is None or pid in only:
                env.update(values)
        return env
