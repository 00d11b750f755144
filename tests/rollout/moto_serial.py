"""moto's server app with one request at a time: ``python moto_serial.py <port>`` (started by ``moto_state``).

moto checks a conditional write's condition and applies the write without a lock, so two concurrent
requests can both pass ``attribute_not_exists`` on the same key (the concurrent-writers test saw two
writers acknowledged at the same sequence number against plain ``moto_server``). DynamoDB applies a
condition and its write atomically per item, and a transaction atomically across its items; serving
moto's own application one request at a time gives the fake that same guarantee, and nothing more.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def main(port: int) -> None:
    app = DomainDispatcherApplication(create_backend_app)
    mutex = threading.Lock()

    def serial(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with mutex:
            return list(app(environ, start_response))  # the whole response is computed under the lock

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # at once, even mid-request (the data dies with us)
    parent = os.getppid()

    def orphan_watch() -> None:  # the test that started us was killed: do not outlive it
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=orphan_watch, daemon=True).start()
    run_simple("127.0.0.1", port, serial, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main(int(sys.argv[1]))
