/**
 * Upcasters turn an event stored at an old schema version into the current shape on read.
 * Stored events are never rewritten. Each upcaster lifts one event type by exactly one version;
 * `upcast` chains them until the current version.
 */
export interface Upcaster {
  readonly type: string
  readonly fromVersion: number
  readonly upcast: (data: unknown) => unknown
}

export interface UpcastInput {
  readonly type: string
  readonly schemaVersion: number
  readonly data: unknown
}

export const upcasterChain = (upcasters: readonly Upcaster[]) => {
  const byKey = new Map(upcasters.map((u) => [`${u.type}@${u.fromVersion}`, u]))
  return <E extends UpcastInput>(event: E): E => {
    let current: E = event
    for (
      let u = byKey.get(`${current.type}@${current.schemaVersion}`);
      u;
      u = byKey.get(`${current.type}@${current.schemaVersion}`)
    ) {
      current = { ...current, schemaVersion: current.schemaVersion + 1, data: u.upcast(current.data) }
    }
    return current
  }
}
