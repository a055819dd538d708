"""A small OpenAI-compatible server with scripted answers, for tests (run as a process).

    python tests/openai_standin.py RULES.json LOG.jsonl

RULES.json is a list of {"contains": TEXT, "answer": TEXT}: a chat request gets the
answer of the first rule whose TEXT occurs in the request's text parts ("" matches any).
Every request body is appended to LOG.jsonl, so a test can read exactly what was sent.
The first line on stdout is {"base_url": "http://127.0.0.1:PORT/v1"}.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def request_text(body: dict) -> str:
    parts = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        else:
            parts += [p.get("text", "") for p in content or [] if p.get("type") == "text"]
    return "\n".join(parts)


def main() -> None:
    rules_path, log_path = sys.argv[1], sys.argv[2]
    with open(rules_path, encoding="utf-8") as handle:
        rules = json.load(handle)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet: the log file is the record
            pass

        def _reply(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._reply(200, {"object": "list", "data": [{"id": "standin", "object": "model", "created": 0,
                                                             "owned_by": "test"}]})
            else:
                self._reply(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            if self.path != "/v1/chat/completions":
                self._reply(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            with lock:
                with open(log_path, "a", encoding="utf-8") as log:
                    log.write(json.dumps(body) + "\n")
            text = request_text(body)
            answer = next((r["answer"] for r in rules if r["contains"] in text), "No rule matched.")
            self._reply(200, {
                "id": "chatcmpl-standin", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "standin"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(text) // 4, "completion_tokens": len(answer) // 4,
                          "total_tokens": len(text) // 4 + len(answer) // 4},
            })

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(json.dumps({"base_url": f"http://127.0.0.1:{server.server_address[1]}/v1"}), flush=True)
    server.serve_forever()


class StandIn:
    """The server as a process, for a test: `StandIn(folder, rules)`, then `.base_url`,
    `.requests()` (the bodies received) and `.stop()`."""

    def __init__(self, folder, rules: list[dict]):
        import subprocess
        from pathlib import Path

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "rules.json").write_text(json.dumps(rules))
        self.log = folder / "requests.jsonl"
        self.log.write_text("")
        self.proc = subprocess.Popen([sys.executable, __file__, str(folder / "rules.json"), str(self.log)],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # blocks until the server listens (or exits)
        if not line:
            raise RuntimeError(f"the stand-in server exited with {self.proc.wait()}")
        self.base_url = json.loads(line)["base_url"]

    def requests(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stdout.close()


if __name__ == "__main__":
    main()
