package hub

import (
	"github.com/prometheus/prometheus/storage"

	"github.com/sysmonstm/sysmonstm/internal/store"
)

// storageAdapter gives ingest the raw tier's querier next to the store's
// appender.
type storageAdapter struct{ *store.Store }

func (a storageAdapter) Querier(mint, maxt int64) (storage.Querier, error) {
	return a.Raw().Querier(mint, maxt)
}
