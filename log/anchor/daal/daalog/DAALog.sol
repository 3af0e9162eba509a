// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title DAALog: the decentralized audit anchor of the ZT system.
/// @notice An append-only record of action hashes (logAction) and batch
/// Merkle roots (logBatch). Nothing is ever changed or removed. Who may write
/// is not restricted: a record is only as meaningful as its sender, and
/// readers (ztlog's reconciliation) select the records of the senders they
/// trust. The ABI is that of the DAALog deployed by the earlier ZT system.
contract DAALog {
    struct Record {
        string agentId;
        bytes32 actionHash;
        uint256 timestamp;
        string metadata;
    }

    /// @notice Emitted once per record. For logBatch, actionHash is the
    /// batch's Merkle root.
    event ActionLogged(
        uint256 indexed recordId,
        string indexed agentId,
        bytes32 indexed actionHash,
        uint256 timestamp,
        string metadata
    );

    /// @notice The number of records; record ids run from 1 to recordCount.
    uint256 public recordCount;

    /// @notice The records by id (1-based; id 0 is never used).
    mapping(uint256 => Record) public records;

    /// @notice Records the hash of one action.
    function logAction(string calldata agentId, bytes32 actionHash, string calldata metadata)
        external
        returns (uint256)
    {
        return _log(agentId, actionHash, metadata);
    }

    /// @notice Records the Merkle root of a batch of actions.
    function logBatch(string calldata agentId, bytes32 merkleRoot, string calldata metadata)
        external
        returns (uint256)
    {
        return _log(agentId, merkleRoot, metadata);
    }

    function _log(string calldata agentId, bytes32 hash, string calldata metadata) private returns (uint256 id) {
        require(bytes(agentId).length > 0, "DAALog: empty agentId");
        require(hash != bytes32(0), "DAALog: zero hash");
        id = ++recordCount;
        records[id] = Record(agentId, hash, block.timestamp, metadata);
        emit ActionLogged(id, agentId, hash, block.timestamp, metadata);
    }
}
