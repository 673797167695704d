"""After cutover, the way back: the Phase 2 app's changes written to Bubble (replay.py), and the evidence that
Bubble holds every one of them (read_back.py). The bookkeeping is in ledger.py."""
