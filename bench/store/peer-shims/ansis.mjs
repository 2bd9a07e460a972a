// Stand-in for `ansis` (see hooks.mjs): no colours.
const plain = (text) => String(text)
export default { hex: () => plain, red: plain, green: plain, blue: plain, cyan: plain, yellow: plain }
