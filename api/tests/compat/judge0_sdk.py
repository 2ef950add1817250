"""Drives the Judge0 door with the official Judge0 Python SDK, unchanged.

Usage: judge0_sdk.py BASE_URL API_TOKEN
Exits non-zero (with the failed check) unless every check passes; prints
one line per check.
"""

import sys

import judge0
from judge0 import Client, LanguageAlias, Status, Submission

base, token = sys.argv[1], sys.argv[2]
# The SDK reads /languages and /config_info when the client is made and
# refuses to start if config_info lacks a field.
client = Client(base, {"X-Auth-Token": token})


def check(name, condition, detail=""):
    if not condition:
        print(f"FAILED {name}: {detail}", flush=True)
        sys.exit(1)
    print(f"ok {name}", flush=True)


about = client.get_about()
check("about announces 1.13.1", about["version"] == "1.13.1", about)

HELLO = {
    LanguageAlias.PYTHON: 'print("hello")',
    LanguageAlias.JAVASCRIPT: 'console.log("hello")',
    LanguageAlias.C: '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }',
    LanguageAlias.CPP: '#include <iostream>\nint main() { std::cout << "hello" << std::endl; }',
    LanguageAlias.JAVA: 'public class Main { public static void main(String[] a) { System.out.println("hello"); } }',
    LanguageAlias.GO: 'package main\nimport "fmt"\nfunc main() { fmt.Println("hello") }',
}
for alias, source in HELLO.items():
    result = judge0.run(client=client, source_code=source, language=alias)
    check(
        f"hello world in {alias.name}",
        result.status == Status.ACCEPTED and result.stdout == "hello\n",
        (result.status, result.stdout, result.stderr, result.compile_output),
    )
    check(f"{alias.name} reports time and memory", result.time is not None and result.memory is not None, result)

echo = "import sys\nprint(sys.stdin.read().strip()[::-1])"
# (Not a valid base64 word: the SDK would decode such a stdin itself.)
result = judge0.run(client=client, source_code=echo, stdin="stressed out", language=LanguageAlias.PYTHON)
check("stdin reaches the program", result.stdout == "tuo desserts\n", result.stdout)

add = "a, b = map(int, input().split())\nprint(a + b)"
result = judge0.run(client=client, source_code=add, test_cases=("2 3", "5"), language=LanguageAlias.PYTHON)
check("expected_output accepted", result.status == Status.ACCEPTED, result.status)
# Judge0 compares lines right-trimmed and ignores trailing newlines.
result = judge0.run(client=client, source_code=add, test_cases=("2 3", "5  \n\n"), language=LanguageAlias.PYTHON)
check("expected_output compared as Judge0 does", result.status == Status.ACCEPTED, result.status)
result = judge0.run(client=client, source_code=add, test_cases=("2 3", "6"), language=LanguageAlias.PYTHON)
check("expected_output wrong answer", result.status == Status.WRONG_ANSWER, result.status)

result = judge0.run(client=client, source_code="int main( { return 0; }", language=LanguageAlias.C)
check(
    "compile error",
    result.status == Status.COMPILATION_ERROR and "error" in (result.compile_output or ""),
    (result.status, result.compile_output),
)

result = judge0.run(
    client=client,
    source_code="while True:\n    pass",
    language=LanguageAlias.PYTHON,
    cpu_time_limit=1,
    wall_time_limit=2,
)
check("time limit", result.status == Status.TIME_LIMIT_EXCEEDED, result.status)

result = judge0.run(client=client, source_code="import sys\nsys.exit(3)", language=LanguageAlias.PYTHON)
check("non-zero exit is NZEC", result.status == Status.RUNTIME_ERROR_NZEC and result.exit_code == 3, (result.status, result.exit_code))

segv = "#include <signal.h>\nint main(void) { raise(SIGSEGV); return 0; }"
result = judge0.run(client=client, source_code=segv, language=LanguageAlias.C)
check("a segfault is SIGSEGV", result.status == Status.RUNTIME_ERROR_SIGSEGV and result.exit_signal == 11, (result.status, result.exit_signal))

# A batch of 20: more than the 3 unfinished runs the native API allows, so
# the door queues them within the user's backlog instead of refusing.
batch = [
    Submission(source_code=f"print({i} * {i})", language=LanguageAlias.PYTHON)
    for i in range(20)
]
results = judge0.run(client=client, submissions=batch)
check(
    "batch of 20",
    [r.stdout for r in results] == [f"{i * i}\n" for i in range(20)]
    and all(r.status == Status.ACCEPTED for r in results),
    [(r.status, r.stdout) for r in results],
)

# base64 round trips: non-ASCII text both ways, and output that is not UTF-8.
result = judge0.run(
    client=client,
    source_code='import sys\nprint("héllo ✓ " + sys.stdin.read())',
    stdin="wörld",
    language=LanguageAlias.PYTHON,
)
check("unicode round trip", result.stdout == "héllo ✓ wörld\n", result.stdout)
raw = 'import sys\nsys.stdout.buffer.write(b"\\xff\\xfeok")'
result = judge0.run(client=client, source_code=raw, language=LanguageAlias.PYTHON)
# The SDK decodes base64 to text with backslashreplace: the bytes survived.
check("non-UTF-8 output survives base64", result.stdout == "\\xff\\xfeok", repr(result.stdout))

print("judge0 sdk: all checks passed", flush=True)
