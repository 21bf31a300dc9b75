print("hello from runner")
