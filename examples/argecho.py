"""Print the arguments, working directory and Python version; leave a file under logs/.

runner run --local examples/argecho.py --arg1 1
"""

import json
import os
import sys
import time

print("argv:", json.dumps(sys.argv, ensure_ascii=False))
print("cwd:", os.getcwd())
print("python:", sys.version.split()[0])
print("this goes to stderr", file=sys.stderr)

os.makedirs("logs", exist_ok=True)
with open(os.path.join("logs", "argecho.json"), "w", encoding="utf-8") as f:
    json.dump({"argv": sys.argv, "cwd": os.getcwd(), "time": time.time()}, f, ensure_ascii=False)
print("wrote logs/argecho.json")
