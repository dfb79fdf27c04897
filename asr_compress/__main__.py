from asr_compress.cli import main

main()
