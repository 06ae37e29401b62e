// Loaded before every test file (package.json's test script, --import):
// LGUEST_TRANSLATION=off|on|forced chooses how the CPUs the tests make run
// their code (book/cpu-translator.md). The suite runs once with translation
// off and once forced on from each page's first instruction.
import { translationSettings, type TranslationMode } from "../../src/cpu/translator.ts";

const mode = process.env.LGUEST_TRANSLATION;
if (mode !== undefined) {
  if (mode !== "off" && mode !== "on" && mode !== "forced") {
    throw new Error(`LGUEST_TRANSLATION must be off, on or forced, not ${JSON.stringify(mode)}`);
  }
  translationSettings.mode = mode as TranslationMode;
}
