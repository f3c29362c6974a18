// Tones for the handheld: a short high beep for ok, a low double beep for
// an error, a middle one for a warning. Generated with WebAudio, so no
// sound files; the browser allows sound once the person has pressed a key.
let ctx = null;

const TONES = {
  ok: [{ hz: 1760, ms: 90 }],
  warning: [{ hz: 880, ms: 160 }, { hz: 880, ms: 160 }],
  error: [{ hz: 220, ms: 180 }, { hz: 220, ms: 180 }],
};

/** Plays `tone` (ok, warning, error) and records it on the page for tests and support. */
export function beep(tone) {
  const notes = TONES[tone] || TONES.error;
  (window.bondgateSounds ||= []).push(tone);
  try {
    ctx ||= new AudioContext();
    if (ctx.state === 'suspended') ctx.resume();
    let at = ctx.currentTime + 0.01;
    for (const n of notes) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = 'square';
      osc.frequency.value = n.hz;
      gain.gain.value = 0.2;
      osc.connect(gain).connect(ctx.destination);
      osc.start(at);
      osc.stop(at + n.ms / 1000);
      at += n.ms / 1000 + 0.08;
    }
    document.body.dataset.audio = ctx.state;
  } catch (e) {
    // No audio device: the banner still says it.
  }
}
