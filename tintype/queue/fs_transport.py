"""kombu's filesystem transport with atomic publishing, for the embedded broker.

The stock channel creates the message file and then writes it; a consumer that lists
the folder in between reads an empty file and its worker dies. Here a message is
written under a name consumers ignore and renamed into place when complete.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

ALIAS = "tintypefs"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as fh:
                fh.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"cannot add message {final!r} to the queue folder") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def register() -> str:
    """Make `tintypefs://` resolve to this transport in this process."""
    TRANSPORT_ALIASES[ALIAS] = "tintype.queue.fs_transport:Transport"
    return f"{ALIAS}://"
