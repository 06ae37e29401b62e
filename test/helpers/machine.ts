// Loaded before every test file (package.json's test script, --import), and
// imported by the test files that expect their Guest to be guest 0, so that
// they are right when run on their own too:
// each test file's process, and every Launcher it starts, is on a machine of
// its own (LGUEST_MACHINE, book/devices-network.md L:138), so the guest ids
// its Launchers get (which the Guest prints, and its MAC is made of) do not
// depend on Launchers that other test files, or other programs, run at the
// same time.
process.env.LGUEST_MACHINE = `test-${process.pid}`;
