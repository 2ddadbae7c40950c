def run_demo(d): pass
