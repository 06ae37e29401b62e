/** off: the interpreter alone; on: hot pages translated; forced: every page, from its first instruction. */
export type TranslationMode = "off" | "on" | "forced";

/** Entries into a block at one offset before a region is translated from there. */
const HOT_ENTRY = 1000;
/** Instructions a CPU interprets before it translates anything (in "on" mode). */
const WARM_UP = 5_000_000;

export const translationSettings: { mode: TranslationMode; hotEntry: number; warmUp: number } = {
  mode: "on", hotEntry: HOT_ENTRY, warmUp: WARM_UP,
};
