/** The Patches screen (being built: issue 7). */
export function PatchesScreen() {
  return (
    <div className="screen empty-state" data-testid="screen-patches">
      <h2>Patches</h2>
      <p>Every change as a live event log; configurations, presets and reports.</p>
      <p className="muted">Not built yet in this version.</p>
    </div>
  );
}
