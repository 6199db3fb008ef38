/** The Server screen (being built: issue 7). */
export function ServerScreen() {
  return (
    <div className="screen empty-state" data-testid="screen-server">
      <h2>Server</h2>
      <p>The request/response proxy in front of a local LLM server: rules and a live request log.</p>
      <p className="muted">Not built yet in this version.</p>
    </div>
  );
}
