/// The one index of an instance's operations (pending and retained), shared by the server and the
/// client side: by id (ids are unique among the instance's kept operations) and by owner, what an
/// operation is addressed by (`/content/{id}/operations/{op}`, `/retrievals/{r}/operations/{op}`).
/// Confined to the engine lock.
struct OperationIndex {
    private var byID: [String: UInt64] = [:]
    private var byOwner: [OperationOwner: Set<UInt64>] = [:]

    /// Ids indexed.
    var count: Int { byID.count }

    /// The serial of the operation with this id.
    func serial(id: String) -> UInt64? { byID[id] }

    /// The serials of `owner`'s operations, in no order.
    func serials(of owner: OperationOwner) -> Set<UInt64> { byOwner[owner] ?? [] }

    mutating func insert(_ operation: OperationRecord) {
        byID[operation.id] = operation.serial
        byOwner[operation.owner, default: []].insert(operation.serial)
    }

    mutating func remove(_ operation: OperationRecord) {
        if byID[operation.id] == operation.serial { byID.removeValue(forKey: operation.id) }
        byOwner[operation.owner]?.remove(operation.serial)
        if byOwner[operation.owner]?.isEmpty == true { byOwner.removeValue(forKey: operation.owner) }
    }
}
